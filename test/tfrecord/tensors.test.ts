// Tensor datasets: write → stream → load round trip on real TFRecord shards, and the checks that
// catch a folder not matching its spec.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '../helpers/paths.js';
import { TensorDatasetWriter, loadTensorDataset, readTensorDataset, readTensorSpec } from '../../lib/tensors/dataset.js';
import { Rng } from '../../lib/rng.js';

function sampleAt(rng: Rng, i: number) {
  const x = new Float32Array(4 * 3 * 2).map(() => rng.next() * 2 - 1);
  const y = new Uint8Array(4 * 3).map(() => (rng.next() < 0.5 ? 0 : 1));
  return { id: `s${i}`, x, y, info: { index: i, group: `g${i % 3}` } };
}

test('TensorDatasetWriter round-trips through readTensorDataset and loadTensorDataset', async () => {
  const dir = path.join(makeTempDir(), 'ds');
  const rng = new Rng(7);
  const samples = Array.from({ length: 11 }, (_, i) => sampleAt(rng, i));
  const writer = await TensorDatasetWriter.create(dir, {
    x: { shape: [4, 3, 2], dtype: 'float32' },
    y: { shape: [4, 3, 1], dtype: 'uint8' },
    classes: 1,
    meta: { note: 'test' },
    shardSize: 4,
  });
  for (const s of samples) await writer.add(s);
  const spec = await writer.close();
  assert.equal(spec.count, 11);
  assert.deepEqual(
    fs.readdirSync(dir).sort(),
    ['part-00000-of-00003.tfrecord', 'part-00001-of-00003.tfrecord', 'part-00002-of-00003.tfrecord', 'spec.json'],
  );
  assert.deepEqual((await readTensorSpec(dir)).meta, { note: 'test' });

  let i = 0;
  for await (const s of readTensorDataset(dir)) {
    assert.equal(s.id, samples[i]!.id);
    assert.deepEqual(s.x, samples[i]!.x);
    assert.deepEqual(s.y, samples[i]!.y);
    assert.deepEqual(s.info, samples[i]!.info);
    i++;
  }
  assert.equal(i, 11);

  const loaded = await loadTensorDataset(dir);
  assert.deepEqual(loaded.ids, samples.map((s) => s.id));
  assert.equal(loaded.x.length, 11 * 24);
  assert.deepEqual(loaded.x.subarray(24 * 5, 24 * 6), samples[5]!.x);
  assert.deepEqual(loaded.y.subarray(12 * 10), samples[10]!.y);
  assert.deepEqual(loaded.info[3], { index: 3, group: 'g0' });
});

test('int32 x and int32 labels load as float32 / uint8', async () => {
  const dir = path.join(makeTempDir(), 'ds');
  const writer = await TensorDatasetWriter.create(dir, { x: { shape: [2], dtype: 'int32' }, y: { shape: [2], dtype: 'int32' }, classes: 4 });
  await writer.add({ id: 'a', x: Int32Array.of(-5, 7), y: Int32Array.of(3, 0), info: {} });
  await writer.close();
  const loaded = await loadTensorDataset(dir);
  assert.deepEqual(Array.from(loaded.x), [-5, 7]);
  assert.deepEqual(Array.from(loaded.y), [3, 0]);
});

test('add rejects samples that do not fit the spec', async () => {
  const dir = path.join(makeTempDir(), 'ds');
  const writer = await TensorDatasetWriter.create(dir, { x: { shape: [2, 2], dtype: 'float32' }, y: { shape: [2, 2], dtype: 'uint8' }, classes: 1 });
  await assert.rejects(writer.add({ id: 'a', x: new Float32Array(3), y: new Uint8Array(4), info: {} }), /x has 3 values, the spec's shape \[2,2\] needs 4/);
  await assert.rejects(writer.add({ id: 'a', x: new Float32Array(4), y: new Int32Array(4), info: {} }), /y is int32, the spec says uint8/);
  // Float values are stored in a narrower dtype only when every one survives the trip.
  await assert.rejects(writer.add({ id: 'a', x: new Float32Array(4), y: Float32Array.of(0, 0.5, 1, 1), info: {} }), /y: value 0\.5 at element 1 cannot be stored as uint8 without loss/);
  await writer.add({ id: 'a', x: new Float32Array(4), y: new Uint8Array(4), info: {} });
  await assert.rejects(writer.add({ id: 'a', x: new Float32Array(4), y: new Uint8Array(4), info: {} }), /added twice/);
  await writer.abort();
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a folder that does not match spec.json fails with the file and record named', async () => {
  const dir = path.join(makeTempDir(), 'ds');
  const writer = await TensorDatasetWriter.create(dir, { x: { shape: [3], dtype: 'float32' }, y: { shape: [3], dtype: 'uint8' }, classes: 1 });
  for (let i = 0; i < 3; i++) await writer.add({ id: `s${i}`, x: new Float32Array(3), y: new Uint8Array(3), info: {} });
  await writer.close();
  const specFile = path.join(dir, 'spec.json');
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));

  fs.writeFileSync(specFile, JSON.stringify({ ...spec, x: { shape: [4], dtype: 'float32' } }));
  await assert.rejects(loadTensorDataset(dir), /part-00000-of-00001\.tfrecord: record 0 at byte 0: feature 'x' has 12 bytes, spec\.json's float32 \[4\] needs 16/);

  fs.writeFileSync(specFile, JSON.stringify({ ...spec, count: 4 }));
  await assert.rejects(loadTensorDataset(dir), /3 records in the shards but spec\.json says 4/);

  fs.rmSync(specFile);
  await assert.rejects(readTensorSpec(dir), /spec\.json: cannot read .*not written completely/);
});

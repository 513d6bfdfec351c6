// Compact tensor storage: a photograph kept as uint8 with its normalisation as the spec's decode affine reads back
// bit for bit as the float32 the preprocess computed; dtype 'auto' picks the narrowest lossless dtype per record;
// a fixed dtype refuses values it would change; folders written before (flow.tensors/v1, float32) still read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '../helpers/paths.js';
import { TensorDatasetWriter, loadTensorDataset, readTensorSpec } from '../../lib/tensors/dataset.js';
import { Rng } from '../../lib/rng.js';

/** What a 2D preprocess does: float64 pixel * (1 / (255 std)) - mean / std, stored float32. */
function normalise(rgb: Uint8Array, mean: number[], std: number[]): Float32Array {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = rgb[i]! * (1 / (255 * std[i % 3]!)) - mean[i % 3]! / std[i % 3]!;
  return out;
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const DECODE = { scale: STD.map((s) => 1 / (255 * s)), offset: MEAN.map((m, c) => -m / STD[c]!) };

test('uint8 photographs with a decode affine: 4x smaller, read back bit-identical to the float32 values', async () => {
  const rng = new Rng(3);
  const photos = Array.from({ length: 5 }, () => new Uint8Array(6 * 4 * 3).map(() => rng.int(256)));
  const masks = photos.map(() => new Uint8Array(6 * 4).map(() => rng.int(2)));
  const dirs = { float: path.join(makeTempDir(), 'f'), compact: path.join(makeTempDir(), 'c') };
  const float = await TensorDatasetWriter.create(dirs.float, { x: { shape: [6, 4, 3], dtype: 'float32' }, y: { shape: [6, 4, 1], dtype: 'uint8' }, classes: 1 });
  // Passing the normalised float32 values: the writer finds they are exactly uint8 under the affine.
  const compact = await TensorDatasetWriter.create(dirs.compact, { x: { shape: [6, 4, 3], dtype: 'uint8', decode: DECODE }, y: { shape: [6, 4, 1], dtype: 'auto' }, classes: 1 });
  for (const [i, photo] of photos.entries()) {
    const sample = { id: `p${i}`, x: normalise(photo, MEAN, STD), y: masks[i]!, info: {} };
    await float.add(sample);
    await compact.add(sample);
  }
  await float.close();
  const spec = await compact.close();
  assert.equal(spec.format, 'flow.tensors/v2');
  assert.equal(spec.x.dtype, 'uint8');
  assert.deepEqual(spec.x.decode, DECODE);
  assert.equal(float.tensorBytes, 5 * (72 * 4 + 24));
  assert.equal(compact.tensorBytes, 5 * (72 + 24));
  const a = await loadTensorDataset(dirs.float);
  const b = await loadTensorDataset(dirs.compact);
  assert.deepEqual(new Uint8Array(b.x.buffer), new Uint8Array(a.x.buffer), 'bit-identical x');
  assert.deepEqual(b.y, a.y);
});

test("dtype 'auto' stores each record in the narrowest lossless dtype; a fixed dtype refuses lossy values", async () => {
  const dir = path.join(makeTempDir(), 'auto');
  const writer = await TensorDatasetWriter.create(dir, { x: { shape: [3], dtype: 'auto' }, y: { shape: [3], dtype: 'uint8' }, classes: 2 });
  const xs = [Float32Array.of(0, 7, 255), Float32Array.of(-3, 1200, 32767), Float32Array.of(0.5, 1, 2), Float32Array.of(-0, 1, 2)];
  for (const [i, x] of xs.entries()) await writer.add({ id: `s${i}`, x, y: Uint8Array.of(0, 1, 1), info: {} });
  const spec = await writer.close();
  assert.equal(spec.x.dtype, 'float32', 'the widest used');
  assert.equal(spec.x.auto, true);
  assert.equal(writer.tensorBytes, 3 + 6 + 12 + 12 + 4 * 3, 'uint8, int16, float32, float32 (-0 is not an integer bit pattern) + y');
  const loaded = await loadTensorDataset(dir);
  for (const [i, x] of xs.entries()) assert.deepEqual(new Uint8Array(loaded.x.slice(i * 3, i * 3 + 3).buffer), new Uint8Array(x.buffer));

  const strict = await TensorDatasetWriter.create(path.join(makeTempDir(), 'strict'), { x: { shape: [3], dtype: 'int16' }, y: { shape: [3], dtype: 'uint8' }, classes: 2 });
  await strict.add({ id: 'ok', x: Float32Array.of(-5, 0, 300), y: Uint8Array.of(0, 0, 1), info: {} });
  await assert.rejects(
    strict.add({ id: 'bad', x: Float32Array.of(1, 2.5, 3), y: Uint8Array.of(0, 0, 1), info: {} }),
    /sample 'bad': x: value 2\.5 at element 1 cannot be stored as int16 without loss; store this tensor as float32/,
  );
  await strict.abort();
});

test('a flow.tensors/v1 float32 folder (written before compact storage) still reads', async () => {
  const dir = path.join(makeTempDir(), 'v1');
  const writer = await TensorDatasetWriter.create(dir, { x: { shape: [2], dtype: 'float32' }, y: { shape: [2], dtype: 'uint8' }, classes: 1 });
  await writer.add({ id: 'a', x: Float32Array.of(0.25, -1.5), y: Uint8Array.of(1, 0), info: {} });
  await writer.close();
  const specFile = path.join(dir, 'spec.json');
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8')) as { format: string };
  spec.format = 'flow.tensors/v1';
  fs.writeFileSync(specFile, JSON.stringify(spec));
  assert.equal((await readTensorSpec(dir)).format, 'flow.tensors/v1');
  assert.deepEqual(Array.from((await loadTensorDataset(dir)).x), [0.25, -1.5]);
});

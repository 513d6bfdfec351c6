// Training reads its batches from disk at random: the same items as the arrays in memory, final weights
// bit-identical to the in-memory path on 1 and 2 workers, and a shard that is truncated or changes under the
// reader fails naming the file, the record and its byte offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '../helpers/paths.js';
import { TensorDatasetWriter, loadTensorDataset } from '../../lib/tensors/dataset.js';
import { BatchPrefetcher, TensorDatasetReader } from '../../lib/tensors/random-access.js';
import { initBackend } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { saveModelToDir, loadModelFromDir } from '../../lib/tf/model-io.js';
import { augmentBatch } from '../../lib/preprocess/augment.js';
import { trainLoop, type TrainData } from '../../lib/train/loop.js';
import { resolveHparams } from '../../lib/train/hparams.js';
import { readAllWeights, type BatchGeometry } from '../../lib/train/gradients.js';
import { DataParallelEngine } from '../../lib/train/parallel.js';
import type { NamedArray } from '../../lib/train/checkpoint.js';
import { syntheticData } from '../train/synthetic.js';

const SIZE = 16;

async function writeDataset(data: TrainData, channels: number, shardSize: number): Promise<string> {
  const dir = path.join(makeTempDir(), 'train');
  const xSize = SIZE * SIZE * channels;
  const ySize = SIZE * SIZE;
  const writer = await TensorDatasetWriter.create(dir, { x: { shape: [SIZE, SIZE, channels], dtype: 'auto' }, y: { shape: [SIZE, SIZE, 1], dtype: 'uint8' }, classes: 1, shardSize });
  for (let i = 0; i < data.count; i++) {
    await writer.add({ id: `s${i}`, x: data.x.slice(i * xSize, (i + 1) * xSize), y: data.y.slice(i * ySize, (i + 1) * ySize), info: {} });
  }
  await writer.close();
  return dir;
}

test('batches read at random equal the loaded arrays; the prefetcher hands them out by step', async () => {
  const data = syntheticData(13, SIZE, 2, 1, 5);
  const dir = await writeDataset(data, 2, 4);
  const loaded = await loadTensorDataset(dir);
  const reader = await TensorDatasetReader.open(dir);
  try {
    assert.equal(reader.count, 13);
    assert.ok(reader.indexBytes <= 13 * 24, 'the index is a few bytes per record');
    const plan = [[12, 0, 5], [3, 3, 7], [11]];
    const prefetcher = new BatchPrefetcher(reader, (step) => plan[step] ?? null, 2);
    for (const [step, indices] of plan.entries()) {
      const batch = await prefetcher.take(step);
      assert.equal(batch.count, indices.length);
      indices.forEach((item, slot) => {
        assert.deepEqual(batch.x.subarray(slot * 512, (slot + 1) * 512), loaded.x.subarray(item * 512, (item + 1) * 512));
        assert.deepEqual(batch.y.subarray(slot * 256, (slot + 1) * 256), loaded.y.subarray(item * 256, (item + 1) * 256));
      });
    }
    await prefetcher.drain();
  } finally {
    await reader.close();
  }
});

test('a shard truncated, damaged or rewritten under the reader fails with file, record and byte offset', async () => {
  const dir = await writeDataset(syntheticData(6, SIZE, 1, 1, 6), 1, 3);
  const shard = path.join(dir, 'part-00001-of-00002.tfrecord');
  const recordBytes = fs.statSync(shard).size / 3;
  const original = fs.readFileSync(shard);

  let reader = await TensorDatasetReader.open(dir);
  fs.truncateSync(shard, recordBytes * 2 + 10);
  await reader.read([0, 1]); // the other shard is untouched
  await assert.rejects(reader.read([5]), (err: Error) => {
    assert.match(err.message, new RegExp(`part-00001-of-00002\\.tfrecord: record 2 at byte ${recordBytes * 2}: .*(truncated|changed)`));
    return true;
  });
  await reader.close();
  await assert.rejects(TensorDatasetReader.open(dir), new RegExp(`part-00001-of-00002\\.tfrecord: record 2 at byte ${recordBytes * 2}: truncated record`));

  // One byte flipped in place (size unchanged, mtime restored): the data CRC catches it.
  fs.writeFileSync(shard, original);
  const { atime, mtime } = fs.statSync(shard);
  reader = await TensorDatasetReader.open(dir);
  const damaged = Buffer.from(original);
  damaged[recordBytes + 40] ^= 0xff;
  fs.writeFileSync(shard, damaged);
  fs.utimesSync(shard, atime, mtime);
  await assert.rejects(reader.read([2, 4]), new RegExp(`part-00001-of-00002\\.tfrecord: record 1 at byte ${recordBytes}: (data CRC mismatch|the shard changed)`));
  // Rewritten with the original bytes but a new mtime: refused as changed, though its bytes would pass.
  fs.writeFileSync(shard, original);
  fs.utimesSync(shard, atime, new Date(mtime.getTime() + 5000));
  await assert.rejects(reader.read([3]), /part-00001-of-00002\.tfrecord: record 0 at byte 0: the shard changed since training opened it \(it was modified\); the dataset changed while training read it/);
  await reader.close();
});

test('training from disk ends with weights bit-identical to training from memory, on 1 and 2 workers', async () => {
  await initBackend('wasm');
  const train = syntheticData(10, SIZE, 1, 1, 31);
  const val = syntheticData(4, SIZE, 1, 1, 32);
  const dir = await writeDataset(train, 1, 5);
  const geometry: BatchGeometry = { shape: [SIZE, SIZE, 1], classes: 1, loss: 'bce_dice' };
  const modelDir = path.join(makeTempDir(), 'model');
  const initial = buildUNet({ inputShape: [SIZE, SIZE, 1], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 9 });
  await saveModelToDir(initial, modelDir);
  initial.dispose();
  const hparams = resolveHparams({ epochs: 2, batch_size: 4, lr: 0.01, checkpoint_every_steps: 0, augment: { hflip: true, vflip: true, rot90: true, brightness: 0.1, contrast: 0.1, scale_crop: null } });

  const run = async (fromDisk: boolean, workers: number): Promise<NamedArray[]> => {
    const model = await loadModelFromDir(modelDir);
    const engine = workers > 1 ? await DataParallelEngine.start(model, modelDir, geometry, workers, 'wasm') : undefined;
    const reader = fromDisk ? await TensorDatasetReader.open(dir) : null;
    try {
      const result = await trainLoop({
        model,
        train: reader ?? train,
        val,
        shape: geometry.shape,
        classes: 1,
        hparams,
        checkpointDir: makeTempDir(),
        signal: new AbortController().signal,
        print: () => undefined,
        augment: augmentBatch,
        workers,
        ...(engine ? { engine } : {}),
      });
      assert.equal(result.status, 'done');
      return await readAllWeights(model);
    } finally {
      await engine?.dispose();
      await reader?.close();
      model.dispose();
    }
  };
  for (const workers of [1, 2]) {
    const memory = await run(false, workers);
    const disk = await run(true, workers);
    assert.equal(disk.length, memory.length);
    disk.forEach((weights, i) => assert.deepEqual(new Uint8Array(weights.values.buffer), new Uint8Array(memory[i]!.values.buffer), `${workers} worker(s): ${weights.name}`));
  }
});

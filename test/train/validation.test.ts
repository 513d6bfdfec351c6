// Validation streamed from a tensor dataset on disk gives exactly the metrics of the same items held in memory,
// on one thread and on two, for batch sizes that do and do not divide the count and across evaluation windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { initBackend } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { saveModelToDir } from '../../lib/tf/model-io.js';
import { TensorDatasetWriter } from '../../lib/tensors/dataset.js';
import { LocalGradientEngine, type BatchGeometry } from '../../lib/train/gradients.js';
import { createParallelEngine } from '../../lib/train/parallel.js';
import { evaluateDataset } from '../../lib/train/loop.js';
import { streamedValidation } from '../../lib/train/validation.js';
import { makeTempDir } from '../helpers/paths.js';
import { syntheticData } from './synthetic.js';

await initBackend('wasm');

const SIZE = 16;
const COUNT = 23; // prime: no batch size below divides it
const shape = [SIZE, SIZE, 1];
const data = syntheticData(COUNT, SIZE, 1, 3, 31);

async function writeDataset(): Promise<string> {
  const dir = path.join(makeTempDir(), 'val');
  const writer = await TensorDatasetWriter.create(dir, { x: { shape, dtype: 'float32' }, y: { shape: [SIZE, SIZE, 1], dtype: 'uint8' }, classes: 3 });
  const pixels = SIZE * SIZE;
  for (let i = 0; i < COUNT; i++) {
    await writer.add({ id: `item${i}`, x: data.x.slice(i * pixels, (i + 1) * pixels), y: data.y.slice(i * pixels, (i + 1) * pixels), info: {} });
  }
  await writer.close();
  return dir;
}

test('streamed validation equals in-memory validation exactly (1 and 2 threads; batch 2, 5, 23, 64)', async () => {
  const dir = await writeDataset();
  const model = buildUNet({ inputShape: [SIZE, SIZE, 1], classes: 3, filters: 4, depth: 2, batchNorm: false, seed: 9 });
  const modelDir = path.join(makeTempDir(), 'model');
  await saveModelToDir(model, modelDir);
  const geometry: BatchGeometry = { shape, classes: 3, loss: 'ce_dice' };
  const local = new LocalGradientEngine(model, geometry);
  const parallel = await createParallelEngine(model, modelDir, geometry, 2, 'wasm');
  try {
    for (const batchSize of [2, 5, 23, 64]) {
      const reference = await evaluateDataset(local, data, geometry, batchSize);
      assert.ok(Number.isFinite(reference.loss));
      for (const engine of [local, parallel]) {
        const streamed = await evaluateDataset(engine, await streamedValidation(dir), geometry, batchSize);
        assert.equal(streamed.loss, reference.loss, `batch ${batchSize}`);
        assert.deepEqual(streamed.dice.perClass(), reference.dice.perClass(), `batch ${batchSize}`);
        assert.equal(streamed.dice.images, COUNT);
      }
    }
  } finally {
    await parallel.dispose();
    model.dispose();
  }
});

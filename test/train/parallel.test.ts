// Data-parallel training across worker threads: gradients averaged over the parts equal the full batch's,
// and an interrupted + resumed 2-worker run ends with exactly the uninterrupted 2-worker run's weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { saveModelToDir, loadModelFromDir } from '../../lib/tf/model-io.js';
import { augmentBatch } from '../../lib/preprocess/augment.js';
import { evaluateDataset, trainLoop, type TrainResult } from '../../lib/train/loop.js';
import { resolveHparams, type Hparams } from '../../lib/train/hparams.js';
import { LocalGradientEngine, readAllWeights, type BatchGeometry } from '../../lib/train/gradients.js';
import { DataParallelEngine, splitSizes, resolveWorkers } from '../../lib/train/parallel.js';
import type { NamedArray } from '../../lib/train/checkpoint.js';
import { makeTempDir } from '../helpers/paths.js';
import { syntheticData } from './synthetic.js';

await initBackend('wasm');
const tf = getTf();
const SIZE = 16;
const train = syntheticData(20, SIZE, 2, 1, 21);
const val = syntheticData(4, SIZE, 2, 1, 22);
const geometry: BatchGeometry = { shape: [SIZE, SIZE, 2], classes: 1, loss: 'bce_dice' };

async function savedModel(batchNorm: boolean): Promise<string> {
  const dir = path.join(makeTempDir(), 'model');
  const model = buildUNet({ inputShape: [SIZE, SIZE, 2], classes: 1, filters: 4, depth: 2, batchNorm, seed: 7 });
  await saveModelToDir(model, dir);
  model.dispose();
  return dir;
}

test('splitSizes and resolveWorkers', () => {
  assert.deepEqual(splitSizes(7, 2), [4, 3]);
  assert.deepEqual(splitSizes(1, 2), [1]);
  assert.deepEqual(splitSizes(8, 2), [4, 4]);
  assert.equal(resolveWorkers(1, 'wasm'), 1);
  assert.equal(resolveWorkers('auto', 'tensorflow'), 1);
  assert.equal(resolveWorkers(2, 'wasm'), 2);
  // auto: one thread per core, up to 2, on the single-threaded backends.
  assert.equal(resolveWorkers('auto', 'wasm'), Math.min(2, os.availableParallelism()));
  assert.equal(resolveWorkers('auto', 'cpu'), Math.min(2, os.availableParallelism()));
});

test('averaged gradients of two parts equal the full batch gradient (no batch norm)', async () => {
  const dir = await savedModel(false);
  const model = await loadModelFromDir(dir);
  const x = train.x.subarray(0, 5 * SIZE * SIZE * 2);
  const y = train.y.subarray(0, 5 * SIZE * SIZE);
  const full = await new LocalGradientEngine(model, geometry).compute(x, y, 5);
  const parallel = await DataParallelEngine.start(model, dir, geometry, 2, 'wasm');
  try {
    const split = await parallel.compute(x, y, 5);
    assert.ok(Math.abs(split.loss - full.loss) < 1e-5, `${split.loss} vs ${full.loss}`);
    for (let i = 0; i < full.grads.length; i++) {
      const a = full.grads[i]!.dataSync();
      const b = split.grads[i]!.dataSync();
      const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
      for (let j = 0; j < a.length; j++) assert.ok(Math.abs(a[j]! - b[j]!) <= 1e-4 * scale, `grad ${i}[${j}]: ${a[j]} vs ${b[j]}`);
    }
    assert.deepEqual(Array.from(split.probabilities.subarray(0, 10)), Array.from(full.probabilities.subarray(0, 10)));
    tf.dispose([...full.grads, ...split.grads]);
  } finally {
    await parallel.dispose();
    model.dispose();
  }
});

test('validation spread over 2 threads gives bit-identical loss and Dice to one thread', async () => {
  const dir = await savedModel(false);
  const model = await loadModelFromDir(dir);
  const parallel = await DataParallelEngine.start(model, dir, geometry, 2, 'wasm');
  try {
    // Change the main thread's weights after the workers loaded the model: evaluate must send them.
    tf.tidy(() => model.trainableWeights.forEach((weight) => weight.write(tf.mul(weight.read(), 1.1))));
    const data = syntheticData(11, SIZE, 2, 1, 23); // batches of 3: 3, 3, 3, 2 (uneven, odd count)
    const one = await evaluateDataset(new LocalGradientEngine(model, geometry), data, geometry, 3);
    const two = await evaluateDataset(parallel, data, geometry, 3);
    assert.ok(Number.isFinite(one.loss));
    assert.equal(two.loss, one.loss);
    assert.deepEqual(Array.from(two.dice.perClass()), Array.from(one.dice.perClass()));
    // One batch only: stays on the main thread.
    const single = await evaluateDataset(parallel, data, geometry, 16);
    const singleOne = await evaluateDataset(new LocalGradientEngine(model, geometry), data, geometry, 16);
    assert.equal(single.loss, singleOne.loss);
  } finally {
    await parallel.dispose();
    model.dispose();
  }
});

function hparams(): Hparams {
  return resolveHparams({
    epochs: 2,
    batch_size: 6,
    lr: 0.01,
    checkpoint_every_steps: 2,
    workers: 2,
    augment: { hflip: true, vflip: true, rot90: false, brightness: 0.1, contrast: 0, scale_crop: null },
  });
}

async function run(modelDir: string, checkpointDir: string, abortAt?: number): Promise<{ result: TrainResult; weights: NamedArray[] }> {
  const model = await loadModelFromDir(modelDir);
  const engine = await DataParallelEngine.start(model, modelDir, geometry, 2, 'wasm');
  const controller = new AbortController();
  try {
    const result = await trainLoop({
      model,
      train,
      val,
      shape: geometry.shape,
      classes: 1,
      hparams: hparams(),
      checkpointDir,
      signal: controller.signal,
      print: () => {},
      augment: augmentBatch,
      engine,
      workers: 2,
      onStep: (step) => {
        if (step === abortAt) controller.abort();
      },
    });
    return { result, weights: await readAllWeights(model) };
  } finally {
    await engine.dispose();
    model.dispose();
  }
}

test('2 workers: interrupted after step 3 and resumed ends with exactly the uninterrupted weights; loss falls', async () => {
  const modelDir = await savedModel(true);
  const reference = await run(modelDir, makeTempDir());
  const epochs = reference.result.metrics.filter((line) => line.type === 'epoch');
  assert.ok(epochs[1]!.loss < epochs[0]!.loss, `epoch losses ${epochs.map((line) => line.loss)}`);
  const dir = makeTempDir();
  const first = await run(modelDir, dir, 3);
  assert.equal(first.result.status, 'interrupted');
  const resumed = await run(modelDir, dir);
  assert.equal(resumed.result.status, 'done');
  let max = 0;
  reference.weights.forEach((array, i) => {
    for (let j = 0; j < array.values.length; j++) max = Math.max(max, Math.abs(array.values[j]! - resumed.weights[i]!.values[j]!));
  });
  assert.equal(max, 0);
});

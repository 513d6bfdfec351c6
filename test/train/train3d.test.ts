// 3D patches through the same training loop: a 3D U-Net learns synthetic boxes, and a run interrupted and
// resumed (1 and 2 workers) ends with exactly the uninterrupted weights, as in 2D.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { saveModelToDir } from '../../lib/tf/model-io.js';
import { augmentBatch, noAugmentation } from '../../lib/preprocess/augment.js';
import { trainLoop, type TrainOptions, type TrainResult } from '../../lib/train/loop.js';
import { resolveHparams, type Hparams } from '../../lib/train/hparams.js';
import { readAllWeights } from '../../lib/train/gradients.js';
import { createParallelEngine } from '../../lib/train/parallel.js';
import type { NamedArray } from '../../lib/train/checkpoint.js';
import { makeTempDir } from '../helpers/paths.js';
import { syntheticVolumes } from './synthetic.js';
import { maxAbsWeightDiff } from '../helpers/tensors.js';

const BACKEND = 'wasm';
await initBackend(BACKEND);

const SIZE = 8;
const CHANNELS = 2;
const CLASSES = 2; // softmax over background + one box class (the multi-class path: ce_dice)
const shape = [SIZE, SIZE, SIZE, CHANNELS];
const train = syntheticVolumes(12, SIZE, CHANNELS, CLASSES, 21);
const val = syntheticVolumes(4, SIZE, CHANNELS, CLASSES, 22);

function hparams(overrides: Partial<Hparams> = {}): Hparams {
  return resolveHparams({
    epochs: 2,
    batch_size: 4,
    lr: 0.01,
    loss: 'ce_dice',
    checkpoint_every_steps: 2,
    augment: { hflip: true, vflip: true, rot90: true, brightness: 0.1, contrast: 0.1, scale_crop: null },
    ...overrides,
  });
}

function newModel() {
  return buildUNet({ inputShape: shape, classes: CLASSES, filters: 4, depth: 2, batchNorm: false, seed: 5 });
}

async function run(checkpointDir: string, h: Hparams, workers: 1 | 2, extra: Partial<TrainOptions> = {}): Promise<{ result: TrainResult; weights: NamedArray[] }> {
  const model = newModel();
  let engine;
  if (workers > 1) {
    const dir = makeTempDir();
    await saveModelToDir(model, dir);
    engine = await createParallelEngine(model, dir, { shape, classes: CLASSES, loss: h.loss }, workers, BACKEND);
  }
  try {
    const result = await trainLoop({
      model,
      train,
      val,
      shape,
      classes: CLASSES,
      hparams: h,
      checkpointDir,
      signal: new AbortController().signal,
      print: () => {},
      augment: augmentBatch,
      workers,
      ...(engine ? { engine } : {}),
      ...extra,
    });
    return { result, weights: await readAllWeights(model) };
  } finally {
    await engine?.dispose();
    model.dispose();
  }
}


test('a 3D U-Net learns synthetic boxes (validation Dice rises well above chance)', async () => {
  const { result } = await run(makeTempDir(), hparams({ epochs: 12, augment: noAugmentation }), 1);
  assert.equal(result.status, 'done');
  const epochs = result.metrics.filter((line) => line.type === 'epoch');
  const first = epochs[0]!;
  const last = epochs[epochs.length - 1]!;
  assert.ok(last.loss < first.loss, `loss ${first.loss} → ${last.loss}`);
  assert.ok(Number(last.val_dice) > 0.7, `val_dice ${last.val_dice}`);
});

for (const workers of [1, 2] as const) {
  test(`3D, ${workers} worker(s): interrupted after step 3 and resumed ends with exactly the uninterrupted weights`, async () => {
    const h = hparams();
    const reference = await run(makeTempDir(), h, workers);
    const dir = makeTempDir();
    const controller = new AbortController();
    const first = await run(dir, h, workers, {
      signal: controller.signal,
      onStep: (step) => {
        if (step === 3) controller.abort();
      },
    });
    assert.equal(first.result.status, 'interrupted');
    const resumed = await run(dir, h, workers);
    assert.equal(resumed.result.status, 'done');
    assert.equal(maxAbsWeightDiff(reference.weights, resumed.weights), 0);
  });
}

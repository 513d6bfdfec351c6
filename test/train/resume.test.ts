// Exact resume: a run interrupted after step k and resumed from its checkpoint ends with bit-identical weights
// to an uninterrupted run (max abs difference 0); bad checkpoints are refused and the previous one is used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { augmentBatch } from '../../lib/preprocess/augment.js';
import { epochOrder, trainLoop, type TrainOptions, type TrainResult } from '../../lib/train/loop.js';
import { resolveHparams, type Hparams } from '../../lib/train/hparams.js';
import { readAllWeights } from '../../lib/train/gradients.js';
import { listCheckpoints, type NamedArray } from '../../lib/train/checkpoint.js';
import { makeTempDir } from '../helpers/paths.js';
import { syntheticData } from './synthetic.js';
import { maxAbsWeightDiff } from '../helpers/tensors.js';

await initBackend('wasm');

const SIZE = 16;
const train = syntheticData(24, SIZE, 1, 1, 11);
const val = syntheticData(6, SIZE, 1, 1, 12);

function hparams(overrides: Partial<Hparams> = {}): Hparams {
  return resolveHparams({
    epochs: 2,
    batch_size: 4,
    lr: 0.01,
    checkpoint_every_steps: 2,
    augment: { hflip: true, vflip: true, rot90: true, brightness: 0.1, contrast: 0.1, scale_crop: null },
    schedule: { type: 'cosine' },
    ...overrides,
  });
}

async function run(
  checkpointDir: string,
  h: Hparams,
  extra: Partial<TrainOptions> = {},
  filters = 4,
): Promise<{ result: TrainResult; weights: NamedArray[]; printed: string[] }> {
  const model = buildUNet({ inputShape: [SIZE, SIZE, 1], classes: 1, filters, depth: 2, batchNorm: true, seed: 3 });
  const printed: string[] = [];
  const result = await trainLoop({
    model,
    train,
    val,
    shape: [SIZE, SIZE, 1],
    classes: 1,
    hparams: h,
    checkpointDir,
    signal: new AbortController().signal,
    print: (line) => printed.push(line),
    augment: augmentBatch,
    ...extra,
  });
  const weights = await readAllWeights(model);
  model.dispose();
  return { result, weights, printed };
}


async function interruptAt(checkpointDir: string, h: Hparams, step: number): Promise<TrainResult> {
  const controller = new AbortController();
  const { result } = await run(checkpointDir, h, {
    signal: controller.signal,
    onStep: (globalStep) => {
      if (globalStep === step) controller.abort();
    },
  });
  return result;
}

for (const optimizer of ['adam', 'sgd'] as const) {
  test(`${optimizer}: interrupted after step 5 and resumed ends with exactly the uninterrupted weights`, async () => {
    const h = hparams({ optimizer });
    const reference = await run(makeTempDir(), h);
    assert.equal(reference.result.status, 'done');

    const dir = makeTempDir();
    const first = await interruptAt(dir, h, 5);
    assert.equal(first.status, 'interrupted');
    assert.equal(first.summary.steps, 5);
    const resumed = await run(dir, h);
    assert.equal(resumed.result.status, 'done');
    assert.ok(resumed.printed.some((line) => /resuming from checkpoint .*global step 5/.test(line)), resumed.printed.join('\n'));
    assert.equal(maxAbsWeightDiff(reference.weights, resumed.weights), 0);
    assert.equal(maxAbsWeightDiff(reference.result.bestWeights!, resumed.result.bestWeights!), 0);
    assert.equal(resumed.result.summary.interrupted_count, 1);
    assert.equal(resumed.result.summary.resumed_count, 1);
    // The same metrics lines (losses are exact; timings differ).
    const losses = (r: TrainResult): number[] => r.metrics.map((line) => line.loss);
    assert.deepEqual(losses(resumed.result), losses(reference.result));
  });
}

test('a truncated newest checkpoint is refused with a clear message and the previous one is used', async () => {
  const h = hparams();
  const reference = await run(makeTempDir(), h);
  const dir = makeTempDir();
  await interruptAt(dir, h, 5);
  const checkpoints = listCheckpoints(dir);
  assert.equal(checkpoints.length, 2, 'the previous complete checkpoint is kept');
  const newest = path.join(checkpoints[0]!.dir, 'weights.bin');
  fs.truncateSync(newest, fs.statSync(newest).size - 100);
  const resumed = await run(dir, h);
  const refusal = resumed.printed.find((line) => line.startsWith('refused checkpoint'));
  assert.ok(refusal, resumed.printed.join('\n'));
  assert.match(refusal, /weights\.bin: truncated or overwritten/);
  assert.ok(resumed.printed.some((line) => line.startsWith(`resuming from checkpoint ${checkpoints[1]!.dir}`)));
  // Resuming from the earlier checkpoint still replays exactly.
  assert.equal(maxAbsWeightDiff(reference.weights, resumed.weights), 0);
  assert.ok(fs.existsSync(path.join(dir, `rejected-${path.basename(checkpoints[0]!.dir)}`)));
});

test('a checkpoint from another model is refused and training starts fresh', async () => {
  const h = hparams({ epochs: 1 });
  const dir = makeTempDir();
  await interruptAt(dir, h, 2);
  const other = await run(dir, h, {}, 8);
  assert.equal(other.result.status, 'done');
  const refusals = other.printed.filter((line) => line.startsWith('refused checkpoint'));
  assert.ok(refusals.length >= 1, other.printed.join('\n'));
  assert.match(refusals[0]!, /written for another model/);
  assert.match(refusals[0]!, /enc1_conv1\/kernel \[3,3,1,4\] but this model has enc1_conv1\/kernel \[3,3,1,8\]/);
  assert.ok(!other.printed.some((line) => line.startsWith('resuming')));
});

test('NaN loss stops training naming the step and the last good checkpoint', async () => {
  const h = hparams({ checkpoint_every_steps: 1 });
  // Poison the sample that the seeded data order puts into the third batch.
  const poisoned = { x: Float32Array.from(train.x), y: train.y, count: train.count };
  const victim = epochOrder(h.seed, 0, train.count)[2 * h.batch_size]!;
  poisoned.x[victim * SIZE * SIZE + 7] = NaN;
  const dir = makeTempDir();
  await assert.rejects(run(dir, h, { train: poisoned }), (error: Error) => {
    const match = /loss is NaN at global step (\d+) .*Last good checkpoint: (\S+)\./.exec(error.message);
    assert.ok(match, error.message);
    assert.equal(Number(match[1]), 3, error.message);
    assert.ok(fs.existsSync(path.join(match[2]!, 'state.json')), `${match[2]} is a complete checkpoint`);
    assert.equal(JSON.parse(fs.readFileSync(path.join(match[2]!, 'state.json'), 'utf8')).state.globalStep, 2);
    return true;
  });
});

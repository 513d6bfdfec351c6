// Optimizers (hand-computed updates, exact state round-trip) and learning-rate schedules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { TrainOptimizer, type OptimizerSettings } from '../../lib/train/optimizers.js';
import { LrSchedule } from '../../lib/train/schedules.js';
import { resolveHparams } from '../../lib/train/hparams.js';
import { Rng } from '../../lib/rng.js';

await initBackend('wasm');
const tf = getTf();

function weightsOf(values: number[][]): { name: string; variable: import('@tensorflow/tfjs-core').Variable }[] {
  return values.map((v, i) => ({ name: `layer${i}/kernel`, variable: tf.variable(tf.tensor1d(v, 'float32')) }));
}

test('Adam: one step from hand-computed moments', () => {
  const weights = weightsOf([[1, -2]]);
  const optimizer = new TrainOptimizer({ kind: 'adam', momentum: 0, weightDecay: 0 }, weights);
  optimizer.apply([tf.tensor1d([0.5, -0.25])], 0.1);
  // m = 0.1 g, v = 0.001 g², bias-corrected step = lr·sqrt(1-0.999)/(1-0.9); update ≈ lr·sign(g).
  const values = weights[0]!.variable.dataSync();
  for (const [i, g, w] of [[0, 0.5, 1], [1, -0.25, -2]] as const) {
    const m = 0.1 * g;
    const v = 0.001 * g * g;
    const expected = w - ((0.1 * Math.sqrt(1 - 0.999)) / (1 - 0.9)) * (m / (Math.sqrt(v) + 1e-7));
    assert.ok(Math.abs(values[i]! - expected) < 1e-6, `${values[i]} vs ${expected}`);
  }
  assert.equal(optimizer.iterations, 1);
});

test('SGD with momentum and weight decay: two steps by hand', () => {
  const weights = weightsOf([[1]]);
  const optimizer = new TrainOptimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 0.1 }, weights);
  optimizer.apply([tf.tensor1d([0.5])], 0.1);
  // g' = 0.5 + 0.1·1 = 0.6; v = 0.6; w = 1 - 0.06 = 0.94
  assert.ok(Math.abs(weights[0]!.variable.dataSync()[0]! - 0.94) < 1e-6);
  optimizer.apply([tf.tensor1d([0.5])], 0.1);
  // g' = 0.5 + 0.094 = 0.594; v = 0.54 + 0.594 = 1.134; w = 0.94 - 0.1134 = 0.8266
  assert.ok(Math.abs(weights[0]!.variable.dataSync()[0]! - 0.8266) < 1e-6);
});

for (const settings of [
  { kind: 'adam', momentum: 0, weightDecay: 0.01 },
  { kind: 'sgd', momentum: 0.9, weightDecay: 0 },
] as OptimizerSettings[]) {
  test(`${settings.kind}: state round-trip continues with bit-identical updates`, async () => {
    const rng = new Rng(5);
    const initial = [[0.3, -0.7, 1.1], [2, 0.5]];
    const grads = (): import('@tensorflow/tfjs-core').Tensor[] =>
      initial.map((row) => tf.tensor1d(row.map(() => rng.normal()), 'float32'));
    const a = weightsOf(initial);
    const optimizerA = new TrainOptimizer(settings, a);
    for (let i = 0; i < 3; i++) optimizerA.apply(grads(), 0.01);
    const state = await optimizerA.getState();
    assert.equal(state.iteration, 3);
    assert.equal(state.slots.length, settings.kind === 'adam' ? 4 : 2);
    assert.equal(state.slots[0]!.name, settings.kind === 'adam' ? 'layer0/kernel/m' : 'layer0/kernel/velocity');

    const b = weightsOf(a.map((w) => Array.from(w.variable.dataSync())));
    const optimizerB = new TrainOptimizer(settings, b);
    // A JSON + bytes trip, as in a checkpoint.
    optimizerB.setState({ ...state, slots: state.slots.map((slot) => ({ ...slot, values: Float32Array.from(slot.values) })) });
    const next = grads();
    optimizerA.apply(next, 0.01);
    optimizerB.apply(next, 0.01);
    a.forEach((w, i) => assert.deepEqual(Array.from(w.variable.dataSync()), Array.from(b[i]!.variable.dataSync())));
    assert.equal(optimizerB.iterations, 4);
  });
}

test('optimizer state for another optimizer or other weights is refused', async () => {
  const adam = new TrainOptimizer({ kind: 'adam', momentum: 0, weightDecay: 0 }, weightsOf([[1, 2]]));
  const state = await adam.getState();
  const sgd = new TrainOptimizer({ kind: 'sgd', momentum: 0.9, weightDecay: 0 }, weightsOf([[1, 2]]));
  assert.throws(() => sgd.setState(state), /state is for adam but training uses sgd/);
  const wider = new TrainOptimizer({ kind: 'adam', momentum: 0, weightDecay: 0 }, weightsOf([[1, 2, 3]]));
  assert.throws(() => wider.setState(state), /layer0\/kernel\/m \[2\] but this model needs layer0\/kernel\/m \[3\]/);
});

const baseSchedule = resolveHparams({}).schedule;

test('constant and step schedules', () => {
  const constant = new LrSchedule({ ...baseSchedule, type: 'constant' }, 0.1, 10, 5);
  assert.equal(constant.lrAt(7, 3), 0.1);
  const step = new LrSchedule({ ...baseSchedule, type: 'step', step_epochs: 2, gamma: 0.5 }, 0.1, 10, 5);
  assert.deepEqual([0, 1, 2, 3, 4].map((epoch) => step.lrAt(epoch, 0)), [0.1, 0.1, 0.05, 0.05, 0.025]);
});

test('cosine schedule: lr at the start, halfway between at the middle, min_lr at the end', () => {
  const cosine = new LrSchedule({ ...baseSchedule, type: 'cosine', min_lr: 0.01 }, 0.1, 4, 10);
  assert.equal(cosine.lrAt(0, 0), 0.1);
  assert.ok(Math.abs(cosine.lrAt(2, 0) - 0.055) < 1e-12);
  assert.ok(Math.abs(cosine.lrAt(1, 0) - (0.01 + 0.045 * (1 + Math.cos(Math.PI / 4)))) < 1e-12);
  assert.ok(cosine.lrAt(3, 9) > 0.01 && cosine.lrAt(3, 9) < 0.0102);
});

test('plateau schedule: reduces after `patience` epochs without improvement, not below min_lr; state round-trips', () => {
  const config = { ...baseSchedule, type: 'plateau' as const, patience: 2, factor: 0.5, min_lr: 0.03, metric: 'val_loss' };
  const plateau = new LrSchedule(config, 0.1, 20, 5);
  const seen: number[] = [];
  for (const value of [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.8, 0.85, 0.86, 0.9, 0.9]) {
    plateau.onValidation({ val_loss: value });
    seen.push(plateau.lrAt(0, 0));
  }
  assert.deepEqual(seen, [0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03]);
  const copy = new LrSchedule(config, 0.1, 20, 5);
  copy.setState(JSON.parse(JSON.stringify(plateau.getState())));
  assert.equal(copy.lrAt(0, 0), 0.03);
  assert.deepEqual(copy.getState(), plateau.getState());
  assert.throws(() => plateau.onValidation({ val_dice: 1 }), /schedule.metric val_loss is not an epoch metric; available: val_dice/);
});

test('plateau on a max metric (val_dice, mode auto)', () => {
  const plateau = new LrSchedule({ ...baseSchedule, type: 'plateau', patience: 1, metric: 'val_dice' }, 0.1, 20, 5);
  plateau.onValidation({ val_dice: 0.5 });
  plateau.onValidation({ val_dice: 0.6 });
  assert.equal(plateau.lrAt(0, 0), 0.1);
  plateau.onValidation({ val_dice: 0.55 });
  assert.equal(plateau.lrAt(0, 0), 0.05);
});

// Losses and the validation Dice against values computed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { DiceAccumulator, checkLossFitsClasses, computeLoss, lossTargetFor, targetFor } from '../../lib/train/losses.js';
import type { LossName } from '../../lib/train/hparams.js';

await initBackend('wasm');
const tf = getTf();

function lossOf(name: LossName, probabilities: number[], shape: [number, number, number, number], labels: number[], classes: number): number {
  return tf.tidy(() => {
    const p = tf.tensor4d(probabilities, shape, 'float32');
    const target = targetFor(tf.tensor4d(labels, [shape[0], shape[1], shape[2], 1], 'int32'), classes);
    return computeLoss(name, p, target).dataSync()[0]!;
  });
}

const close = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) < 1e-5, `${what}: ${actual} vs ${expected}`);

// Binary: one image of 2x2 pixels.
const binaryP = [0.9, 0.2, 0.5, 0];
const binaryY = [1, 0, 1, 0];

test('binary cross-entropy', () => {
  const expected = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.5) + Math.log(1 - 1e-7)) / 4;
  close(lossOf('bce', binaryP, [1, 2, 2, 1], binaryY, 1), expected, 'bce');
});

test('soft Dice (smooth 1) and BCE + Dice', () => {
  const dice = (2 * (0.9 + 0.5) + 1) / (0.9 + 0.2 + 0.5 + 0 + 2 + 1);
  close(lossOf('dice', binaryP, [1, 2, 2, 1], binaryY, 1), 1 - dice, 'dice');
  const bce = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.5) + Math.log(1 - 1e-7)) / 4;
  close(lossOf('bce_dice', binaryP, [1, 2, 2, 1], binaryY, 1), bce + 1 - dice, 'bce_dice');
});

test('soft Dice is averaged per image: an empty image predicted empty costs 0', () => {
  // Image 1 as above; image 2 empty label, prediction 0 everywhere → its Dice is (0 + 1) / (0 + 1) = 1.
  const dice1 = (2 * 1.4 + 1) / (1.6 + 2 + 1);
  close(lossOf('dice', [...binaryP, 0, 0, 0, 0], [2, 2, 2, 1], [...binaryY, 0, 0, 0, 0], 1), 1 - (dice1 + 1) / 2, 'dice per image');
});

// Multi-class: 1 image, 1x2 pixels, 3 classes.
const multiP = [0.7, 0.2, 0.1, 0.1, 0.3, 0.6];
const multiY = [0, 2];

test('categorical cross-entropy and CE + Dice over the foreground classes', () => {
  const ce = -(Math.log(0.7) + Math.log(0.6)) / 2;
  close(lossOf('ce', multiP, [1, 1, 2, 3], multiY, 3), ce, 'ce');
  const diceClass1 = (0 + 1) / (0.2 + 0.3 + 0 + 1);
  const diceClass2 = (2 * 0.6 + 1) / (0.1 + 0.6 + 1 + 1);
  close(lossOf('ce_dice', multiP, [1, 1, 2, 3], multiY, 3), ce + 1 - (diceClass1 + diceClass2) / 2, 'ce_dice');
});

test('a loss that does not fit the class count is refused', () => {
  assert.throws(() => checkLossFitsClasses('bce', 4), /binary masks .* 4 classes: use ce or ce_dice/);
  assert.throws(() => checkLossFitsClasses('ce_dice', 1), /dataset is binary/);
  checkLossFitsClasses('ce', 4);
  checkLossFitsClasses('dice', 1);
});

test('hard Dice: threshold 0.5, per image, both empty = 1; multi-class per foreground class', () => {
  const binary = new DiceAccumulator(1);
  // Image 1: prediction {0, 2}, truth {0, 2} after thresholding [0.9, 0.2, 0.5, 0] → {0} only (0.5 is not > 0.5).
  binary.add(Float32Array.from([0.9, 0.2, 0.5, 0, 0.1, 0.1, 0.1, 0.1]), Uint8Array.from([1, 0, 1, 0, 0, 0, 0, 0]), 2);
  // Image 1 Dice = 2*1 / (1 + 2) = 2/3; image 2 both empty = 1.
  close(binary.mean(), (2 / 3 + 1) / 2, 'binary');
  const multi = new DiceAccumulator(3);
  // argmax → [0, 2]; truth [1, 2]: class 1 tp 0 fn 1 → 0; class 2 tp 1 → 1.
  multi.add(Float32Array.from([0.5, 0.4, 0.1, 0.1, 0.3, 0.6]), Uint8Array.from([1, 2]), 1);
  assert.deepEqual(multi.perClass(), [0, 1]);
  close(multi.mean(), 0.5, 'multi mean');
});

// Ignored pixels (the label map's `ignore` values, stored as IGNORE_INDEX) count in no loss and no Dice.
const IGNORE = 255;

/** The loss of `labels` with IGNORE pixels masked, and its gradient w.r.t. the probabilities. */
function maskedLoss(name: LossName, probabilities: number[], shape: [number, number, number, number], labels: number[], classes: number): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const p = tf.tensor4d(probabilities, shape, 'float32');
    const { target, valid } = lossTargetFor(tf.tensor4d(labels, [shape[0], shape[1], shape[2], 1], 'int32'), classes, IGNORE);
    const f = (q: import('@tensorflow/tfjs-core').Tensor) => computeLoss(name, q, target, valid);
    const grad = tf.grad(f)(p).dataSync() as Float32Array;
    return { loss: f(p).dataSync()[0]!, grad };
  });
}

test('ignored pixels: each loss equals the loss over the other pixels, and their gradient is 0', () => {
  // Pixel 1 of image 0 and pixel 2 of image 1 are ignored; without them each image keeps three pixels.
  const p = [0.9, 0.3, 0.5, 0.1, 0.7, 0.2, 0.6, 0.4];
  const y = [1, IGNORE, 1, 0, 1, 0, IGNORE, 0];
  const keptP = [0.9, 0.5, 0.1, 0.7, 0.2, 0.4];
  const keptY = [1, 1, 0, 1, 0, 0];
  for (const name of ['bce', 'dice', 'bce_dice'] as const) {
    const masked = maskedLoss(name, p, [2, 2, 2, 1], y, 1);
    close(masked.loss, lossOf(name, keptP, [2, 1, 3, 1], keptY, 1), `${name} with ignored pixels`);
    assert.ok(masked.grad[1] === 0, `${name}: gradient at an ignored pixel`); // ±0
    assert.ok(masked.grad[6] === 0, `${name}: gradient at an ignored pixel`);
    assert.ok(masked.grad[0] !== 0, `${name}: gradient at a counted pixel`);
  }
  // Softmax over 3 classes: 2 images of 2 pixels, one ignored in image 0.
  const probs = [0.7, 0.2, 0.1, 0.1, 0.1, 0.8, 0.2, 0.5, 0.3, 0.6, 0.3, 0.1];
  const labels = [0, IGNORE, 1, 2];
  for (const name of ['ce', 'ce_dice'] as const) {
    const masked = maskedLoss(name, probs, [2, 1, 2, 3], labels, 3);
    // The same pixels laid out as images of [1 pixel] and [2 pixels] cannot share one tensor; for ce the mean over
    // the three counted pixels is the reference, for ce_dice the ce part plus per-image Dice computed by hand.
    const ce = -(Math.log(0.7) + Math.log(0.5) + Math.log(0.1)) / 3;
    if (name === 'ce') close(masked.loss, ce, 'ce with an ignored pixel');
    else {
      const dice = (pr: number[], tr: number[]) => (2 * pr.reduce((a, v, i) => a + v * tr[i]!, 0) + 1) / (pr.reduce((a, b) => a + b, 0) + tr.reduce((a, b) => a + b, 0) + 1);
      // Classes 1 and 2 of image 0 (one pixel, label 0) and image 1 (labels 1, 2).
      const d = [dice([0.2], [0]), dice([0.1], [0]), dice([0.5, 0.3], [1, 0]), dice([0.3, 0.1], [0, 1])];
      close(masked.loss, ce + 1 - d.reduce((a, b) => a + b, 0) / 4, 'ce_dice with an ignored pixel');
    }
    for (let c = 3; c < 6; c++) assert.ok(masked.grad[c] === 0, `${name}: gradient at the ignored pixel`);
  }
});

test('the training Dice skips ignored pixels', () => {
  const withIgnore = new DiceAccumulator(1, IGNORE);
  withIgnore.add(Float32Array.from([0.9, 0.9, 0.1, 0.1]), Uint8Array.from([1, IGNORE, 0, IGNORE]), 1);
  close(withIgnore.mean(), 1, 'Dice with the ignored false positive left out');
  const without = new DiceAccumulator(1);
  without.add(Float32Array.from([0.9, 0.9, 0.1, 0.1]), Uint8Array.from([1, 0, 0, 0]), 1);
  assert.ok(without.mean() < 1);
});

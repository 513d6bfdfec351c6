// Losses and the validation Dice against values computed by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { DiceAccumulator, checkLossFitsClasses, computeLoss, targetFor } from '../../lib/train/losses.js';
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

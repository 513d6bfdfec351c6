// Segmentation losses on the model's probabilities (the U-Net ends in sigmoid for 1 class, softmax for K).
// Binary: BCE, soft Dice, BCE + Dice. Multi-class: categorical cross-entropy, CE + soft Dice over the
// foreground classes (1..K-1). Soft Dice is computed per image and averaged over the batch, with a smoothing
// term of 1 so an image with an empty mask and an empty prediction scores a loss of 0, not NaN.
import * as tf from '@tensorflow/tfjs-core';
import type { LossName } from './hparams.js';
import { diceFromCounts } from '../metrics/binary.js';

/** Probabilities are clipped to [EPSILON, 1 - EPSILON] before log (float32: log(0) would be -Infinity). */
export const EPSILON = 1e-7;
export const DICE_SMOOTH = 1;

const BINARY_LOSSES: readonly LossName[] = ['bce', 'dice', 'bce_dice'];

/** Throws when the loss does not fit the dataset's class count (1 = binary sigmoid, K > 1 = softmax). */
export function checkLossFitsClasses(loss: LossName, classes: number): void {
  const binary = BINARY_LOSSES.includes(loss);
  if (binary && classes !== 1) {
    throw new Error(`loss ${loss} is for binary masks (classes 1) but the dataset has ${classes} classes: use ce or ce_dice`);
  }
  if (!binary && classes < 2) {
    throw new Error(`loss ${loss} is for multi-class labels but the dataset is binary (classes 1): use bce, dice or bce_dice`);
  }
}

/**
 * The pixels a loss counts. Labels hold class indices, and `ignoreIndex` (the label map's `ignore` values, see
 * lib/contracts/labels.ts) where a pixel is neither foreground nor background: such pixels are left out of
 * every loss and of the training Dice. `valid` is null when nothing is ignored, so those losses compute exactly
 * as before (the same arithmetic, bit for bit).
 */
export interface LossTarget {
  target: tf.Tensor;
  /** 1 where a pixel counts, 0 where it is ignored ([N, ..., 1]); null: every pixel counts. */
  valid: tf.Tensor | null;
}

/** Class indices [N,...,1] (uint8 values as int32/float) → the target the model's output is compared with. */
export function targetFor(labels: tf.Tensor, classes: number): tf.Tensor {
  return tf.tidy(() => {
    if (classes === 1) return tf.cast(labels, 'float32');
    const squeezed = tf.squeeze(tf.cast(labels, 'int32'), [-1]) as tf.Tensor;
    return tf.oneHot(squeezed, classes) as tf.Tensor;
  });
}

/** targetFor, with the pixels labelled `ignoreIndex` (if given) set to background and masked out. */
export function lossTargetFor(labels: tf.Tensor, classes: number, ignoreIndex?: number): LossTarget {
  if (ignoreIndex === undefined) return { target: targetFor(labels, classes), valid: null };
  return tf.tidy(() => {
    const ignored = tf.equal(labels, ignoreIndex);
    const valid = tf.cast(tf.logicalNot(ignored), 'float32');
    const cleaned = tf.where(ignored, tf.zerosLike(labels), labels);
    return { target: targetFor(cleaned, classes), valid };
  });
}

/** Mean of per-pixel values [N, ..., 1] over the valid pixels (all of them when `valid` is null). */
function maskedMean(perPixel: tf.Tensor, valid: tf.Tensor | null): tf.Scalar {
  if (valid === null) return tf.mean(perPixel) as tf.Scalar;
  return tf.div(tf.sum(tf.mul(perPixel, valid)), tf.maximum(tf.sum(valid), 1)) as tf.Scalar;
}

function binaryCrossEntropy(probabilities: tf.Tensor, target: tf.Tensor, valid: tf.Tensor | null): tf.Scalar {
  const p = tf.clipByValue(probabilities, EPSILON, 1 - EPSILON);
  const perPixel = tf.add(tf.mul(target, tf.log(p)), tf.mul(tf.sub(1, target), tf.log(tf.sub(1, p))));
  return tf.neg(maskedMean(perPixel, valid)) as tf.Scalar;
}

function categoricalCrossEntropy(probabilities: tf.Tensor, target: tf.Tensor, valid: tf.Tensor | null): tf.Scalar {
  const p = tf.clipByValue(probabilities, EPSILON, 1 - EPSILON);
  const perPixel = tf.sum(tf.mul(target, tf.log(p)), -1, valid !== null);
  return tf.neg(maskedMean(perPixel, valid)) as tf.Scalar;
}

/** 1 - soft Dice per item and channel, averaged over items and the channels from `firstChannel` on. */
function softDiceLoss(probabilities: tf.Tensor, target: tf.Tensor, firstChannel: number, valid: tf.Tensor | null): tf.Scalar {
  // Ignored pixels count for neither side: their probabilities and targets are zeroed.
  if (valid !== null) probabilities = tf.mul(probabilities, valid);
  // Items are [N, H, W, C] or [N, D, H, W, C]: sum over every axis between the batch and the channels, then drop
  // the channels before `firstChannel` from the small [N, C] result (slicing the full maps instead cost more than
  // the whole convolution work of a 3D step on wasm).
  const rank = probabilities.rank;
  const channels = probabilities.shape[rank - 1]!;
  const spatialAxes = Array.from({ length: rank - 2 }, (_, i) => i + 1);
  const intersection = tf.sum(tf.mul(probabilities, target), spatialAxes);
  const total = tf.add(tf.sum(probabilities, spatialAxes), tf.sum(target, spatialAxes));
  const dice = tf.div(tf.add(tf.mul(2, intersection), DICE_SMOOTH), tf.add(total, DICE_SMOOTH));
  const kept = firstChannel > 0 ? tf.slice(dice, [0, firstChannel], [-1, channels - firstChannel]) : dice;
  return tf.sub(1, tf.mean(kept)) as tf.Scalar;
}

/**
 * The scalar loss of a batch: `probabilities` [N,H,W,C] or [N,D,H,W,C] from the model, `target` from targetFor,
 * `valid` from lossTargetFor (null: every pixel counts).
 */
export function computeLoss(name: LossName, probabilities: tf.Tensor, target: tf.Tensor, valid: tf.Tensor | null = null): tf.Scalar {
  return tf.tidy(() => {
    switch (name) {
      case 'bce':
        return binaryCrossEntropy(probabilities, target, valid);
      case 'dice':
        return softDiceLoss(probabilities, target, 0, valid);
      case 'bce_dice':
        return tf.add(binaryCrossEntropy(probabilities, target, valid), softDiceLoss(probabilities, target, 0, valid)) as tf.Scalar;
      case 'ce':
        return categoricalCrossEntropy(probabilities, target, valid);
      case 'ce_dice':
        return tf.add(categoricalCrossEntropy(probabilities, target, valid), softDiceLoss(probabilities, target, 1, valid)) as tf.Scalar;
    }
  });
}

/** Hard-label Dice sums over a set of images: per class (foreground only) the sum of per-image Dice. */
export class DiceAccumulator {
  readonly perClassSum: Float64Array;
  images = 0;

  /** classes: 1 (binary: threshold 0.5) or K (argmax; Dice for classes 1..K-1); pixels labelled `ignoreIndex` are skipped. */
  constructor(
    readonly classes: number,
    readonly ignoreIndex?: number,
  ) {
    this.perClassSum = new Float64Array(Math.max(1, classes - 1));
  }

  /** probabilities: [count, H*W, C] flattened; labels: [count, H*W] class indices. */
  add(probabilities: Float32Array, labels: Uint8Array, count: number): void {
    const pixels = labels.length / count;
    const foreground = this.perClassSum.length;
    const tp = new Float64Array(foreground);
    const fp = new Float64Array(foreground);
    const fn = new Float64Array(foreground);
    for (let image = 0; image < count; image++) {
      tp.fill(0);
      fp.fill(0);
      fn.fill(0);
      for (let i = image * pixels, end = i + pixels; i < end; i++) {
        const truth = labels[i]!;
        if (truth === this.ignoreIndex) continue;
        let predicted: number;
        if (this.classes === 1) {
          predicted = probabilities[i]! > 0.5 ? 1 : 0;
        } else {
          // argmax, first maximum wins (as tf.argMax).
          const base = i * this.classes;
          predicted = 0;
          let best = probabilities[base]!;
          for (let k = 1; k < this.classes; k++) {
            const value = probabilities[base + k]!;
            if (value > best) {
              best = value;
              predicted = k;
            }
          }
        }
        if (predicted === truth) {
          if (truth > 0) tp[truth - 1]! += 1;
        } else {
          if (predicted > 0) fp[predicted - 1]! += 1;
          if (truth > 0) fn[truth - 1]! += 1;
        }
      }
      for (let k = 0; k < foreground; k++) {
        this.perClassSum[k]! += diceFromCounts({ tp: tp[k]!, fp: fp[k]!, fn: fn[k]! });
      }
    }
    this.images += count;
  }

  /** Mean per-image Dice of each foreground class (index 0 = class 1). */
  perClass(): number[] {
    return Array.from(this.perClassSum, (sum) => (this.images === 0 ? NaN : sum / this.images));
  }

  /** Binary Dice, or the mean over foreground classes. */
  mean(): number {
    const values = this.perClass();
    return values.reduce((a, b) => a + b, 0) / values.length;
  }
}

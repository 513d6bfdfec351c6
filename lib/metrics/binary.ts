// Overlap and distance metrics of one binary mask pair (prediction vs ground truth), 2D or 3D.
// Masks are Uint8Array with non-zero = foreground, laid out row-major over `shape` (last axis fastest);
// `spacing` gives millimetres per element in the same axis order.
import { checkGeometry, squaredDistanceTransform } from './edt.js';

export interface Confusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export interface BinaryMetrics extends Confusion {
  dice: number;
  iou: number;
  /** TP / (TP + FN); null when the ground truth is empty (undefined: nothing to detect). */
  sensitivity: number | null;
  /** TN / (TN + FP); null when the ground truth covers the whole image (undefined). */
  specificity: number | null;
  /** 95th percentile of the pooled symmetric surface distances, in mm (see HD95_DEFINITION). */
  hd95: number;
}

/** The definitions `metrics.json` states beside the numbers; keep in step with the code below. */
export const METRIC_DEFINITIONS = {
  dice: 'per case 2*TP / (2*TP + FP + FN); 1 when prediction and ground truth are both empty',
  iou: 'per case TP / (TP + FP + FN); 1 when prediction and ground truth are both empty',
  sensitivity: 'per case TP / (TP + FN); null (and left out of the mean) when the ground truth is empty',
  specificity: 'per case TN / (TN + FP); null (and left out of the mean) when the ground truth fills the image',
  hd95:
    'per case 95th percentile (linear interpolation between order statistics) of the pooled symmetric surface ' +
    'distances: the Euclidean distance in mm (voxel spacing from the header) from each surface voxel of the ' +
    'prediction to the nearest surface voxel of the ground truth, and from each ground-truth surface voxel to the ' +
    'nearest prediction surface voxel, both sets pooled into one; a surface voxel is a foreground voxel with at ' +
    'least one face neighbour (4-connectivity in 2D, 6 in 3D) that is background or outside the image',
  emptyMasks:
    'both empty: Dice 1, IoU 1, HD95 0; exactly one empty: Dice 0, IoU 0, HD95 = the image diagonal in mm ' +
    '(sqrt(sum((size_i * spacing_i)^2)))',
} as const;

export function confusion(prediction: Uint8Array, truth: Uint8Array): Confusion {
  if (prediction.length !== truth.length) {
    throw new Error(`prediction has ${prediction.length} elements but the ground truth has ${truth.length}`);
  }
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < prediction.length; i++) {
    const p = prediction[i] !== 0;
    const t = truth[i] !== 0;
    if (p && t) tp++;
    else if (p) fp++;
    else if (t) fn++;
  }
  return { tp, fp, fn, tn: prediction.length - tp - fp - fn };
}

/** Dice from counts, with the both-empty rule (1). */
export function diceFromCounts(c: Pick<Confusion, 'tp' | 'fp' | 'fn'>): number {
  const denominator = 2 * c.tp + c.fp + c.fn;
  return denominator === 0 ? 1 : (2 * c.tp) / denominator;
}

/** Length of the image diagonal in mm: the HD95 given when exactly one mask is empty. */
export function imageDiagonal(shape: readonly number[], spacing: readonly number[]): number {
  return Math.hypot(...shape.map((size, axis) => size * spacing[axis]!));
}

/**
 * Surface voxels of a mask: foreground with a face neighbour that is background or outside the image.
 * Returns 1 at surface voxels, 0 elsewhere.
 */
export function surfaceOf(mask: Uint8Array, shape: readonly number[]): Uint8Array {
  const surface = new Uint8Array(mask.length);
  const strides = stridesOf(shape);
  const coords = new Int32Array(shape.length);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      for (let axis = 0; axis < shape.length; axis++) {
        const c = coords[axis]!;
        const stride = strides[axis]!;
        if (c === 0 || c === shape[axis]! - 1 || !mask[i - stride] || !mask[i + stride]) {
          surface[i] = 1;
          break;
        }
      }
    }
    // Advance the multi-index (last axis fastest).
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      if (++coords[axis]! < shape[axis]!) break;
      coords[axis] = 0;
    }
  }
  return surface;
}

/**
 * Distances (mm) from each surface voxel of `a` to the nearest surface voxel of `b`, and from each surface
 * voxel of `b` to the nearest of `a`. Both masks must be non-empty. Everything runs inside the bounding box of
 * both masks grown by one voxel: every feature lies inside it, so distances there are exact, and the extra
 * voxel keeps the surface rule (a neighbour outside the crop is background, as outside the image) unchanged.
 */
export function surfaceDistances(
  a: Uint8Array, b: Uint8Array, shape: readonly number[], spacing: readonly number[],
): { aToB: Float64Array; bToA: Float64Array } {
  checkGeometry(a.length, shape, spacing);
  checkGeometry(b.length, shape, spacing);
  const box = boundingBox(a, b, shape, 1);
  if (!box) throw new Error('surfaceDistances needs two non-empty masks');
  const surfaceA = surfaceOf(crop(a, shape, box), box.size);
  const surfaceB = surfaceOf(crop(b, shape, box), box.size);
  const toB = squaredDistanceTransform(surfaceB, box.size, spacing);
  const toA = squaredDistanceTransform(surfaceA, box.size, spacing);
  return { aToB: sampleAt(toB, surfaceA), bToA: sampleAt(toA, surfaceB) };
}

/** HD95 per METRIC_DEFINITIONS.hd95, including the empty-mask rules. */
export function hd95(prediction: Uint8Array, truth: Uint8Array, shape: readonly number[], spacing: readonly number[]): number {
  checkGeometry(prediction.length, shape, spacing);
  checkGeometry(truth.length, shape, spacing);
  const predictionEmpty = isEmpty(prediction);
  const truthEmpty = isEmpty(truth);
  if (predictionEmpty && truthEmpty) return 0;
  if (predictionEmpty || truthEmpty) return imageDiagonal(shape, spacing);
  const { aToB, bToA } = surfaceDistances(prediction, truth, shape, spacing);
  const pooled = new Float64Array(aToB.length + bToA.length);
  pooled.set(aToB, 0);
  pooled.set(bToA, aToB.length);
  return percentile(pooled, 95);
}

/** The p-th percentile (0..100) with linear interpolation between order statistics (numpy's default). */
export function percentile(values: Float64Array, p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty set');
  const sorted = Float64Array.from(values).sort();
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low]! + (rank - low) * (sorted[high]! - sorted[low]!);
}

export function binaryMetrics(
  prediction: Uint8Array, truth: Uint8Array, shape: readonly number[], spacing: readonly number[],
): BinaryMetrics {
  checkGeometry(prediction.length, shape, spacing);
  checkGeometry(truth.length, shape, spacing);
  const c = confusion(prediction, truth);
  const union = c.tp + c.fp + c.fn;
  return {
    ...c,
    dice: diceFromCounts(c),
    iou: union === 0 ? 1 : c.tp / union,
    sensitivity: c.tp + c.fn === 0 ? null : c.tp / (c.tp + c.fn),
    specificity: c.tn + c.fp === 0 ? null : c.tn / (c.tn + c.fp),
    hd95: hd95(prediction, truth, shape, spacing),
  };
}

/** 1 where the label value belongs to `values` (e.g. BraTS WT = {1, 2, 4}), else 0. */
export function regionMask(labels: Uint8Array, values: readonly number[]): Uint8Array {
  const member = new Uint8Array(256);
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`region label value ${v} is not an integer in 0..255`);
    member[v] = 1;
  }
  const mask = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) mask[i] = member[labels[i]!]!;
  return mask;
}

interface Box {
  start: number[];
  size: number[];
}

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis]!;
  }
  return strides;
}

function isEmpty(mask: Uint8Array): boolean {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) return false;
  return true;
}

/** Bounding box of the foreground of `a` or `b`, grown by `pad` on every side (clamped to the image). */
function boundingBox(a: Uint8Array, b: Uint8Array, shape: readonly number[], pad: number): Box | null {
  const last = shape.length - 1;
  const rowLength = shape[last]!;
  const rows = a.length / rowLength;
  const lo = shape.map(() => Infinity);
  const hi = shape.map(() => -Infinity);
  const coords = new Array<number>(last).fill(0);
  // Row by row (last axis): a row with no foreground costs one tight loop and no index arithmetic.
  for (let row = 0; row < rows; row++) {
    const start = row * rowLength;
    let first = -1;
    let lastOn = -1;
    for (let x = 0; x < rowLength; x++) {
      if (a[start + x] !== 0 || b[start + x] !== 0) {
        if (first < 0) first = x;
        lastOn = x;
      }
    }
    if (first >= 0) {
      if (first < lo[last]!) lo[last] = first;
      if (lastOn > hi[last]!) hi[last] = lastOn;
      for (let axis = 0; axis < last; axis++) {
        const c = coords[axis]!;
        if (c < lo[axis]!) lo[axis] = c;
        if (c > hi[axis]!) hi[axis] = c;
      }
    }
    for (let axis = last - 1; axis >= 0; axis--) {
      if (++coords[axis]! < shape[axis]!) break;
      coords[axis] = 0;
    }
  }
  if (lo[last] === Infinity) return null;
  const start = lo.map((l) => Math.max(0, l - pad));
  const end = hi.map((h, axis) => Math.min(shape[axis]! - 1, h + pad));
  return { start, size: start.map((s0, axis) => end[axis]! - s0 + 1) };
}

function crop(mask: Uint8Array, shape: readonly number[], box: Box): Uint8Array {
  const out = new Uint8Array(box.size.reduce((a, b) => a * b, 1));
  const strides = stridesOf(shape);
  const last = shape.length - 1;
  const rowLength = box.size[last]!;
  const rows = out.length / rowLength;
  const coords = new Array<number>(last).fill(0);
  for (let row = 0; row < rows; row++) {
    let offset = box.start[last]!;
    for (let axis = 0; axis < last; axis++) offset += (box.start[axis]! + coords[axis]!) * strides[axis]!;
    out.set(mask.subarray(offset, offset + rowLength), row * rowLength);
    for (let axis = last - 1; axis >= 0; axis--) {
      if (++coords[axis]! < box.size[axis]!) break;
      coords[axis] = 0;
    }
  }
  return out;
}

function sampleAt(squared: Float64Array, where: Uint8Array): Float64Array {
  let count = 0;
  for (let i = 0; i < where.length; i++) if (where[i]) count++;
  const out = new Float64Array(count);
  let k = 0;
  for (let i = 0; i < where.length; i++) if (where[i]) out[k++] = Math.sqrt(squared[i]!);
  return out;
}

// Comparing tensors computed two ways (a flow kernel against the cpu backend's reference).
import assert from 'node:assert/strict';
import type { NamedArray } from '../../lib/train/checkpoint.js';

/** Largest element difference relative to the largest reference magnitude. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

/** Largest absolute difference between two weight sets (0: bit-identical), checking names and order agree. */
export function maxAbsWeightDiff(a: readonly NamedArray[], b: readonly NamedArray[]): number {
  assert.equal(a.length, b.length, 'weight sets of different sizes');
  let max = 0;
  a.forEach((array, i) => {
    assert.equal(array.name, b[i]!.name);
    for (let j = 0; j < array.values.length; j++) max = Math.max(max, Math.abs(array.values[j]! - b[i]!.values[j]!));
  });
  return max;
}

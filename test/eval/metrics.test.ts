import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  binaryMetrics, hd95, imageDiagonal, percentile, regionMask, squaredDistanceTransform, summarizeRegion,
  surfaceDistances, surfaceOf,
} from '../../lib/metrics/index.js';
import { BRATS_REGIONS } from '../../lib/datasets/brats/ingest.js';

const close = (actual: number, expected: number, tolerance = 1e-9): void =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

function maskFrom(shape: number[], voxels: number[][]): Uint8Array {
  const mask = new Uint8Array(shape.reduce((a, b) => a * b, 1));
  for (const v of voxels) {
    let index = 0;
    for (let axis = 0; axis < shape.length; axis++) index = index * shape[axis]! + v[axis]!;
    mask[index] = 1;
  }
  return mask;
}

function coordsOf(index: number, shape: readonly number[]): number[] {
  const coords = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    coords[axis] = index % shape[axis]!;
    index = Math.floor(index / shape[axis]!);
  }
  return coords;
}

function bruteSquaredDistances(features: Uint8Array, shape: number[], spacing: number[]): Float64Array {
  const out = new Float64Array(features.length).fill(Infinity);
  const featureCoords: number[][] = [];
  features.forEach((f, i) => { if (f) featureCoords.push(coordsOf(i, shape)); });
  for (let i = 0; i < features.length; i++) {
    const c = coordsOf(i, shape);
    for (const f of featureCoords) {
      let d = 0;
      for (let axis = 0; axis < shape.length; axis++) d += ((c[axis]! - f[axis]!) * spacing[axis]!) ** 2;
      if (d < out[i]!) out[i] = d;
    }
  }
  return out;
}

test('distance transform of a 1D line with 2 mm spacing is hand-computable', () => {
  const d = squaredDistanceTransform(Uint8Array.from([0, 0, 1, 0, 0, 0]), [6], [2]);
  assert.deepEqual(Array.from(d), [16, 4, 0, 4, 16, 36]);
});

test('distance transform with anisotropic 3D spacing (Z 3 mm, Y 1 mm, X 0.5 mm)', () => {
  const shape = [3, 3, 4];
  const d = squaredDistanceTransform(maskFrom(shape, [[0, 0, 0]]), shape, [3, 1, 0.5]);
  // voxel (2, 2, 3): (2*3)^2 + (2*1)^2 + (3*0.5)^2 = 36 + 4 + 2.25
  close(d[shape[1]! * shape[2]! * 2 + shape[2]! * 2 + 3]!, 42.25);
  const none = squaredDistanceTransform(new Uint8Array(36), shape, [1, 1, 1]);
  assert.ok(none.every((v) => v === Infinity));
});

test('distance transform equals brute force on random 2D/3D masks with random spacing', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 })).map((s) => [...s]),
        fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })).map((s) => [...s]),
      ),
      fc.array(fc.double({ min: 0.25, max: 4, noNaN: true }), { minLength: 3, maxLength: 3 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (shape, spacings, seed) => {
        const spacing = spacings.slice(0, shape.length);
        const n = shape.reduce((a, b) => a * b, 1);
        const mask = new Uint8Array(n);
        let s = seed;
        for (let i = 0; i < n; i++) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          mask[i] = (s >>> 16) % 5 === 0 ? 1 : 0;
        }
        const fast = squaredDistanceTransform(mask, shape, spacing);
        const brute = bruteSquaredDistances(mask, shape, spacing);
        for (let i = 0; i < n; i++) {
          if (brute[i] === Infinity) assert.equal(fast[i], Infinity);
          else close(fast[i]!, brute[i]!, 1e-9 * Math.max(1, brute[i]!));
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('surface voxels: foreground with a background or out-of-image face neighbour', () => {
  const shape = [5, 5];
  const square: number[][] = [];
  for (let y = 1; y <= 3; y++) for (let x = 1; x <= 3; x++) square.push([y, x]);
  const surface = surfaceOf(maskFrom(shape, square), shape);
  assert.equal(surface.reduce((a, b) => a + b, 0), 8);
  assert.equal(surface[2 * 5 + 2], 0, 'the centre of a 3x3 square is interior');
  const full = surfaceOf(new Uint8Array(25).fill(1), shape);
  assert.equal(full.reduce((a, b) => a + b, 0), 16, 'the image border counts as surface');
  assert.equal(full[12], 0);
});

test('overlap metrics of a hand-computed 2x2 case', () => {
  const m = binaryMetrics(Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([0, 1, 1, 0]), [2, 2], [1, 1]);
  assert.deepEqual([m.tp, m.fp, m.fn, m.tn], [1, 1, 1, 1]);
  close(m.dice, 0.5);
  close(m.iou, 1 / 3);
  close(m.sensitivity!, 0.5);
  close(m.specificity!, 0.5);
});

test('HD95 pools both directions and interpolates the 95th percentile (anisotropic 2D)', () => {
  // One row, x spacing 2 mm. A = {x0}; B = {x0..x3}. A→B: [0]; B→A: [0, 2, 4, 6] mm.
  // Pooled sorted [0, 0, 2, 4, 6]: rank 0.95*4 = 3.8 → 4 + 0.8*(6-4) = 5.6 mm.
  const shape = [1, 6];
  const a = maskFrom(shape, [[0, 0]]);
  const b = maskFrom(shape, [[0, 0], [0, 1], [0, 2], [0, 3]]);
  const { aToB, bToA } = surfaceDistances(a, b, shape, [1, 2]);
  assert.deepEqual(Array.from(aToB), [0]);
  assert.deepEqual(Array.from(bToA), [0, 2, 4, 6]);
  close(hd95(a, b, shape, [1, 2]), 5.6);
  close(hd95(b, a, shape, [1, 2]), 5.6, 1e-12);
});

test('HD95 in 3D uses the Z spacing (3 mm slices)', () => {
  const shape = [3, 3, 3];
  const a = maskFrom(shape, [[0, 1, 1]]);
  const b = maskFrom(shape, [[2, 1, 1]]);
  close(hd95(a, b, shape, [3, 1, 1]), 6);
  const c = maskFrom(shape, [[1, 2, 2]]);
  // (0,0,0) → (1,2,2): (1*3)^2 + (2*1)^2 + (2*1)^2 = 17
  close(hd95(maskFrom(shape, [[0, 0, 0]]), c, shape, [3, 1, 1]), Math.sqrt(17));
});

test('HD95 of a cube against the same cube shifted by one slice is the slice thickness', () => {
  const shape = [8, 8, 8];
  const cube = (z0: number): Uint8Array => {
    const voxels: number[][] = [];
    for (let z = z0; z < z0 + 4; z++) for (let y = 2; y < 6; y++) for (let x = 2; x < 6; x++) voxels.push([z, y, x]);
    return maskFrom(shape, voxels);
  };
  // Every surface voxel of one cube is at most one slice (2.5 mm) from the other's surface, and more than 5%
  // of them are exactly one slice away (the top and bottom faces), so HD95 is 2.5 mm; checked by brute force too.
  const a = cube(1);
  const b = cube(2);
  const spacing = [2.5, 1, 1];
  const sa = surfaceOf(a, shape);
  const sb = surfaceOf(b, shape);
  const toB = bruteSquaredDistances(sb, shape, spacing);
  const toA = bruteSquaredDistances(sa, shape, spacing);
  const pooled: number[] = [];
  sa.forEach((v, i) => { if (v) pooled.push(Math.sqrt(toB[i]!)); });
  sb.forEach((v, i) => { if (v) pooled.push(Math.sqrt(toA[i]!)); });
  close(hd95(a, b, shape, spacing), percentile(Float64Array.from(pooled), 95), 1e-9);
  close(hd95(a, b, shape, spacing), 2.5);
});

test('empty-mask conventions', () => {
  const shape = [4, 3];
  const spacing = [2, 1];
  const empty = new Uint8Array(12);
  const some = maskFrom(shape, [[1, 1]]);
  const both = binaryMetrics(empty, empty, shape, spacing);
  assert.deepEqual([both.dice, both.iou, both.hd95, both.sensitivity], [1, 1, 0, null]);
  close(both.specificity!, 1);
  const missed = binaryMetrics(empty, some, shape, spacing);
  assert.deepEqual([missed.dice, missed.iou, missed.sensitivity], [0, 0, 0]);
  close(missed.hd95, Math.sqrt(64 + 9));
  const spurious = binaryMetrics(some, empty, shape, spacing);
  assert.deepEqual([spurious.dice, spurious.iou, spurious.sensitivity], [0, 0, null]);
  close(spurious.hd95, imageDiagonal(shape, spacing));
});

test('regions select label values; summaries give mean and pooled Dice', () => {
  assert.deepEqual(Array.from(regionMask(Uint8Array.from([0, 1, 2, 4, 3]), BRATS_REGIONS.WT!)), [0, 1, 1, 1, 0]);
  assert.deepEqual(Array.from(regionMask(Uint8Array.from([0, 1, 2, 4, 3]), BRATS_REGIONS.TC!)), [0, 1, 0, 1, 0]);
  const first = binaryMetrics(Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([0, 1, 1, 0]), [4], [1]); // dice 0.5
  const second = binaryMetrics(Uint8Array.from([1, 1, 1, 1]), Uint8Array.from([1, 1, 1, 1]), [4], [1]); // dice 1
  const summary = summarizeRegion([first, second]);
  close(summary.dice!, 0.75);
  close(summary.globalDice!, (2 * 5) / (2 * 5 + 1 + 1));
  assert.equal(summary.specificityCases, 1, 'a full ground truth has no defined specificity');
  close(summary.specificity!, 0.5);
  assert.equal(summarizeRegion([]).dice, null);
});

test('bad geometry is refused with a message naming the mismatch', () => {
  assert.throws(() => binaryMetrics(new Uint8Array(4), new Uint8Array(4), [3], [1]), /4 elements but shape \[3\]/);
  assert.throws(() => hd95(new Uint8Array(4), new Uint8Array(4), [2, 2], [1]), /spacing/);
});

test('HD95 on a 240x240x155 volume runs in well under a few seconds', () => {
  const shape = [155, 240, 240];
  const n = 155 * 240 * 240;
  const a = new Uint8Array(n);
  const b = new Uint8Array(n);
  for (let z = 0; z < 155; z++) for (let y = 0; y < 240; y++) for (let x = 0; x < 240; x++) {
    const i = (z * 240 + y) * 240 + x;
    if ((z - 77) ** 2 + (y - 120) ** 2 + (x - 120) ** 2 < 40 ** 2) a[i] = 1;
    if ((z - 77) ** 2 + (y - 120) ** 2 + (x - 124) ** 2 < 40 ** 2) b[i] = 1;
  }
  const start = performance.now();
  const value = hd95(a, b, shape, [1, 1, 1]);
  const elapsed = performance.now() - start;
  assert.ok(value > 2 && value <= 4.01, `shifted sphere HD95 ${value}`);
  assert.ok(elapsed < 8000, `took ${elapsed} ms`);
});

test('surface distances equal brute force on random 3D masks (crop and image-edge rule included)', () => {
  fc.assert(
    fc.property(
      fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 })).map((s) => [...s]),
      fc.array(fc.double({ min: 0.5, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (shape, spacing, seed) => {
        const n = shape.reduce((x, y) => x * y, 1);
        const a = new Uint8Array(n);
        const b = new Uint8Array(n);
        let s = seed;
        for (let i = 0; i < n; i++) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          a[i] = (s >>> 16) % 3 === 0 ? 1 : 0;
          b[i] = (s >>> 20) % 4 === 0 ? 1 : 0;
        }
        if (!a.some((v) => v) || !b.some((v) => v)) return;
        const sa = surfaceOf(a, shape);
        const sb = surfaceOf(b, shape);
        const toB = bruteSquaredDistances(sb, shape, spacing);
        const toA = bruteSquaredDistances(sa, shape, spacing);
        const expectedAToB: number[] = [];
        const expectedBToA: number[] = [];
        sa.forEach((v, i) => { if (v) expectedAToB.push(Math.sqrt(toB[i]!)); });
        sb.forEach((v, i) => { if (v) expectedBToA.push(Math.sqrt(toA[i]!)); });
        const { aToB, bToA } = surfaceDistances(a, b, shape, spacing);
        assert.equal(aToB.length, expectedAToB.length);
        assert.equal(bToA.length, expectedBToA.length);
        aToB.forEach((d, i) => close(d, expectedAToB[i]!, 1e-9));
        bToA.forEach((d, i) => close(d, expectedBToA[i]!, 1e-9));
      },
    ),
    { numRuns: 150 },
  );
});

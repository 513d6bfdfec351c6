// Seeded augmentation: determinism, a fixed number of draws per sample, labels kept in their label set,
// and geometric transforms applied identically to inputs and labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../lib/rng.js';
import { augmentBatch, DRAWS_PER_SAMPLE, noAugmentation, type AugmentConfig } from '../../lib/preprocess/augment.js';

const everything: AugmentConfig = { hflip: true, vflip: true, rot90: true, brightness: 0.3, contrast: 0.2, scale_crop: [0.8, 1.3] };
const geometricOnly: AugmentConfig = { hflip: true, vflip: true, rot90: true, brightness: 0, contrast: 0, scale_crop: null };

/** A batch whose labels are an asymmetric pattern of `classes` values and whose channel 0 equals the label. */
function makeBatch(count: number, shape: [number, number, number], classes: number, seed: number) {
  const [h, w, c] = shape;
  const rng = new Rng(seed);
  const x = new Float32Array(count * h * w * c);
  const y = new Uint8Array(count * h * w);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const p = n * h * w + i * w + j;
        // An L-shaped blob plus random specks: no flip or turn maps it onto itself.
        const label = (i < h / 2 && j < w / 3) || (i < h / 5 && j < w - 2) ? 1 + ((i + j + n) % (classes - 1)) : rng.int(10) === 0 ? rng.int(classes) : 0;
        y[p] = label;
        x[p * c] = label;
        for (let k = 1; k < c; k++) x[p * c + k] = rng.uniform(-2, 2);
      }
    }
  }
  return { x, y };
}

test('same seed, same result; the Rng advances by exactly DRAWS_PER_SAMPLE per sample whatever the config', () => {
  const shape: [number, number, number] = [16, 16, 3];
  for (const config of [everything, geometricOnly, noAugmentation]) {
    const a = makeBatch(5, shape, 2, 1);
    const b = makeBatch(5, shape, 2, 1);
    const rngA = new Rng(7);
    const rngB = new Rng(7);
    augmentBatch(a.x, a.y, 5, shape, config, rngA);
    augmentBatch(b.x, b.y, 5, shape, config, rngB);
    assert.deepEqual(a.x, b.x);
    assert.deepEqual(a.y, b.y);
    const reference = new Rng(7);
    for (let i = 0; i < 5 * DRAWS_PER_SAMPLE; i++) reference.next();
    assert.deepEqual(rngA.getState(), reference.getState(), `draw count differs for ${JSON.stringify(config)}`);
  }
  const c = makeBatch(5, shape, 2, 1);
  const d = makeBatch(5, shape, 2, 1);
  augmentBatch(c.x, c.y, 5, shape, everything, new Rng(7));
  augmentBatch(d.x, d.y, 5, shape, everything, new Rng(8));
  assert.notDeepEqual(c.x, d.x);
});

test('no augmentation leaves the batch untouched', () => {
  const shape: [number, number, number] = [12, 10, 2];
  const a = makeBatch(3, shape, 2, 3);
  const original = { x: a.x.slice(), y: a.y.slice() };
  augmentBatch(a.x, a.y, 3, shape, noAugmentation, new Rng(1));
  assert.deepEqual(a.x, original.x);
  assert.deepEqual(a.y, original.y);
});

test('binary masks stay binary and multi-class labels stay in their set (4 channels, with scale-crop)', () => {
  for (const classes of [2, 4]) {
    const shape: [number, number, number] = [24, 24, classes === 2 ? 3 : 4];
    const batch = makeBatch(16, shape, classes, 5);
    augmentBatch(batch.x, batch.y, 16, shape, everything, new Rng(11));
    const seen = new Set(batch.y);
    for (const value of seen) assert.ok(value < classes, `label ${value} outside 0..${classes - 1}`);
    assert.ok(seen.has(0) && seen.has(1));
    for (const value of batch.x) assert.ok(Number.isFinite(value));
  }
});

function dihedral(source: Uint8Array, size: number, turns: number, mirror: boolean): Uint8Array {
  const out = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let r = i;
      let c = j;
      for (let t = 0; t < turns; t++) [r, c] = [c, size - 1 - r];
      if (mirror) c = size - 1 - c;
      out[i * size + j] = source[r * size + c]!;
    }
  }
  return out;
}

test('flips and 90° turns move inputs and labels identically, and each output is a symmetry of its input', () => {
  const size = 12;
  const shape: [number, number, number] = [size, size, 3];
  const count = 24;
  const batch = makeBatch(count, shape, 2, 9);
  const before = batch.y.slice();
  augmentBatch(batch.x, batch.y, count, shape, geometricOnly, new Rng(21));
  const seenTransforms = new Set<string>();
  for (let n = 0; n < count; n++) {
    const pixels = size * size;
    for (let p = 0; p < pixels; p++) assert.equal(batch.x[(n * pixels + p) * 3], batch.y[n * pixels + p], `sample ${n} pixel ${p}: x and y moved differently`);
    const input = before.subarray(n * pixels, (n + 1) * pixels);
    const output = batch.y.subarray(n * pixels, (n + 1) * pixels);
    let match: string | null = null;
    for (let turns = 0; turns < 4 && match === null; turns++) {
      for (const mirror of [false, true]) {
        if (Buffer.from(dihedral(input, size, turns, mirror)).equals(Buffer.from(output))) match = `${turns}${mirror}`;
      }
    }
    assert.notEqual(match, null, `sample ${n} is not a flip/turn of its input`);
    seenTransforms.add(match!);
  }
  assert.ok(seenTransforms.size >= 5, `only ${seenTransforms.size} distinct transforms in ${count} samples`);
});

test('non-square items only flip and half-turn, still moving x and y together', () => {
  const shape: [number, number, number] = [8, 14, 1];
  const batch = makeBatch(10, shape, 2, 4);
  const before = batch.y.slice();
  augmentBatch(batch.x, batch.y, 10, shape, geometricOnly, new Rng(2));
  for (let p = 0; p < batch.y.length; p++) assert.equal(batch.x[p], batch.y[p]);
  assert.notDeepEqual(batch.y, before);
  const countOnes = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
  assert.equal(countOnes(batch.y), countOnes(before));
});

test('brightness and contrast change x only, within their ranges', () => {
  const shape: [number, number, number] = [10, 10, 3];
  const batch = makeBatch(6, shape, 2, 8);
  const before = { x: batch.x.slice(), y: batch.y.slice() };
  augmentBatch(batch.x, batch.y, 6, shape, { ...noAugmentation, brightness: 0.5 }, new Rng(3));
  assert.deepEqual(batch.y, before.y);
  for (let n = 0; n < 6; n++) {
    const at = n * 300;
    const shift = batch.x[at]! - before.x[at]!;
    assert.ok(Math.abs(shift) <= 0.5 && shift !== 0);
    for (let k = 0; k < 300; k++) assert.ok(Math.abs(batch.x[at + k]! - before.x[at + k]! - shift) < 1e-5);
  }
});

test('3D items [D, H, W, C]: every slice gets the same plane transform as a 2D item with the same draws', () => {
  const shape2d: [number, number, number] = [12, 12, 2];
  const depth = 3;
  const count = 4;
  for (const config of [everything, geometricOnly]) {
    // A 3D batch whose D slices are copies of the 2D items: transforming it must give D copies of the
    // transformed 2D items (brightness/contrast means over identical slices equal the 2D means).
    const flat = makeBatch(count, shape2d, 3, 5);
    const plane = 12 * 12;
    const x3 = new Float32Array(count * depth * plane * 2);
    const y3 = new Uint8Array(count * depth * plane);
    for (let n = 0; n < count; n++) {
      for (let d = 0; d < depth; d++) {
        x3.set(flat.x.subarray(n * plane * 2, (n + 1) * plane * 2), (n * depth + d) * plane * 2);
        y3.set(flat.y.subarray(n * plane, (n + 1) * plane), (n * depth + d) * plane);
      }
    }
    const rng2d = new Rng(9);
    const rng3d = new Rng(9);
    augmentBatch(flat.x, flat.y, count, shape2d, config, rng2d);
    augmentBatch(x3, y3, count, [depth, ...shape2d], config, rng3d);
    assert.deepEqual(rng3d.getState(), rng2d.getState(), 'the same draws per item in 2D and 3D');
    for (let n = 0; n < count; n++) {
      for (let d = 0; d < depth; d++) {
        assert.deepEqual(y3.subarray((n * depth + d) * plane, (n * depth + d + 1) * plane), flat.y.subarray(n * plane, (n + 1) * plane));
        const got = x3.subarray((n * depth + d) * plane * 2, (n * depth + d + 1) * plane * 2);
        const want = flat.x.subarray(n * plane * 2, (n + 1) * plane * 2);
        for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-5, `item ${n} slice ${d} value ${i}: ${got[i]} vs ${want[i]}`);
      }
    }
  }
});

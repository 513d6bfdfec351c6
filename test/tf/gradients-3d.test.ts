// The Conv3DBackpropInputV2 (conv3dTranspose) gradient flow registers, checked by central finite differences:
// L = Σ conv3dTranspose(x, w) · g is linear in x and in w, so a central difference is exact up to float
// rounding and any wrong sign, flipped kernel or swapped stride shows as a large error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Scalar, Tensor, Tensor5D } from '@tensorflow/tfjs-core';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { Rng } from '../../lib/rng.js';

await initBackend('cpu');
const tf = getTf();

function random(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => rng.uniform(-1, 1));
}

interface Case {
  x: [number, number, number, number, number];
  kernel: [number, number, number];
  outChannels: number;
  stride: 1 | 2;
  pad: 'same' | 'valid';
}

const cases: Case[] = [
  { x: [2, 3, 4, 3, 2], kernel: [2, 2, 2], outChannels: 3, stride: 2, pad: 'same' },
  { x: [1, 3, 3, 2, 2], kernel: [3, 1, 2], outChannels: 2, stride: 2, pad: 'valid' },
  { x: [2, 4, 3, 3, 1], kernel: [3, 3, 3], outChannels: 2, stride: 1, pad: 'same' },
];

for (const c of cases) {
  test(`conv3dTranspose gradients match finite differences: x [${c.x}] kernel [${c.kernel}] stride ${c.stride} ${c.pad}`, () => {
    const [n, d, h, w] = c.x;
    const inChannels = c.x[4];
    // conv3dTranspose filters are [kd, kh, kw, outChannels, inChannels].
    const filterShape: [number, number, number, number, number] = [...c.kernel, c.outChannels, inChannels];
    const outShape: [number, number, number, number, number] =
      c.pad === 'same'
        ? [n, d * c.stride, h * c.stride, w * c.stride, c.outChannels]
        : [n, (d - 1) * c.stride + c.kernel[0], (h - 1) * c.stride + c.kernel[1], (w - 1) * c.stride + c.kernel[2], c.outChannels];
    const xValues = random(c.x, 1);
    const wValues = random(filterShape, 2);
    const g = tf.tensor(random(outShape, 3), outShape);
    const loss = (xv: Float32Array, wv: Float32Array): number =>
      tf.tidy(() => {
        const y = tf.conv3dTranspose(tf.tensor(xv, c.x) as Tensor5D, tf.tensor(wv, filterShape) as Tensor5D, outShape, c.stride, c.pad);
        return tf.sum(tf.mul(y, g)).dataSync()[0]!;
      });
    const [dx, dw] = tf.grads((x: Tensor, filter: Tensor): Scalar =>
      tf.sum(tf.mul(tf.conv3dTranspose(x as Tensor5D, filter as Tensor5D, outShape, c.stride, c.pad), g)),
    )([tf.tensor(xValues, c.x), tf.tensor(wValues, filterShape)]);
    const analytic = [dx!.dataSync(), dw!.dataSync()];
    const eps = 0.05;
    for (const [which, values] of [
      [0, xValues],
      [1, wValues],
    ] as const) {
      let maxError = 0;
      let scale = 0;
      for (let i = 0; i < values.length; i++) {
        const plus = Float32Array.from(values);
        const minus = Float32Array.from(values);
        plus[i] = plus[i]! + eps;
        minus[i] = minus[i]! - eps;
        const numeric = which === 0 ? (loss(plus, wValues) - loss(minus, wValues)) / (2 * eps) : (loss(xValues, plus) - loss(xValues, minus)) / (2 * eps);
        maxError = Math.max(maxError, Math.abs(numeric - analytic[which]![i]!));
        scale = Math.max(scale, Math.abs(numeric));
      }
      assert.ok(maxError / scale < 1e-3, `${which === 0 ? 'dx' : 'dw'}: relative error ${maxError / scale}`);
    }
  });
}

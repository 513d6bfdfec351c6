// The kernel cases every accelerated backend is checked on against the cpu backend (tfjs's reference): each
// stride, padding, kernel and channel count flow's 2D and 3D U-Nets and their variants use. Shared by the
// backend conformance tests so a new backend is held to the same cases as wasm.
import type { Scalar, Tensor } from '@tensorflow/tfjs-core';
import { getTf } from '../../lib/tf/backend.js';
import { Rng } from '../../lib/rng.js';

export type Tf = ReturnType<typeof getTf>;
export type Shape4 = [number, number, number, number];
export type Shape5 = [number, number, number, number, number];
export type Triple = [number, number, number];

/** Uniform in [-1, 1] from flow's seeded Rng: identical inputs on every backend. */
export function randomValues(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = rng.uniform(-1, 1);
  return values;
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Forward output and the gradients of Σ y² (a non-uniform upstream gradient) w.r.t. each input. */
export async function outputAndGrads(tf: Tf, f: (...inputs: Tensor[]) => Tensor, inputs: Tensor[]): Promise<Float32Array[]> {
  const y = f(...inputs);
  const grads = tf.grads((...xs: Tensor[]): Scalar => tf.sum(tf.square(f(...xs))))(inputs);
  const out = [(await y.data()) as Float32Array];
  for (const g of grads) out.push((await g.data()) as Float32Array);
  tf.dispose([...inputs, y, ...grads]);
  return out;
}

export interface Conv2dCase {
  x: Shape4;
  kernel: [number, number];
  outChannels: number;
  stride: 1 | 2;
  pad: 'same' | 'valid';
}

export const conv2dCases: Conv2dCase[] = [];
for (const stride of [1, 2] as const) {
  for (const pad of ['same', 'valid'] as const) {
    for (const kernel of [
      [1, 1],
      [2, 2],
      [3, 3],
    ] as [number, number][]) {
      // Odd and even spatial sizes, non-square, batch > 1, several channels; 8 and 16 channels in and out.
      conv2dCases.push({ x: [2, 7, 6, 3], kernel, outChannels: 4, stride, pad });
      conv2dCases.push({ x: [3, 8, 9, 2], kernel, outChannels: 5, stride, pad });
      conv2dCases.push({ x: [2, 7, 6, 8], kernel, outChannels: 16, stride, pad });
      conv2dCases.push({ x: [1, 9, 8, 16], kernel, outChannels: 8, stride, pad });
    }
  }
}

export interface Conv3dCase {
  x: Shape5;
  kernel: Triple;
  outChannels: number;
  stride: number | Triple;
  pad: 'same' | 'valid';
}

export const conv3dCases: Conv3dCase[] = [];
for (const stride of [1, 2] as const) {
  for (const pad of ['same', 'valid'] as const) {
    for (const kernel of [
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
      [3, 1, 2],
    ] as Triple[]) {
      conv3dCases.push({ x: [2, 5, 6, 7, 3], kernel, outChannels: 4, stride, pad });
      conv3dCases.push({ x: [3, 4, 6, 4, 2], kernel, outChannels: 5, stride, pad });
      conv3dCases.push({ x: [2, 4, 5, 6, 8], kernel, outChannels: 16, stride, pad });
      conv3dCases.push({ x: [1, 5, 4, 5, 16], kernel, outChannels: 8, stride, pad });
    }
  }
}
// Strides that differ per axis (depth stride 2 only, then height/width only).
conv3dCases.push({ x: [2, 7, 5, 6, 3], kernel: [3, 3, 3], outChannels: 2, stride: [2, 1, 1], pad: 'same' });
conv3dCases.push({ x: [2, 5, 7, 6, 2], kernel: [2, 3, 1], outChannels: 3, stride: [1, 2, 2], pad: 'valid' });

export interface Transpose3dCase {
  x: Shape5;
  kernel: Triple;
  outShape: Shape5;
  stride: number;
  pad: 'same' | 'valid';
}

export const transpose3dCases: Transpose3dCase[] = [
  // The U-Net up-convolution: kernel 2, stride 2, 'same' doubles every axis.
  { x: [2, 3, 4, 2, 5], kernel: [2, 2, 2], outShape: [2, 6, 8, 4, 3], stride: 2, pad: 'same' },
  { x: [2, 4, 3, 3, 3], kernel: [3, 3, 3], outShape: [2, 7, 6, 5, 2], stride: 2, pad: 'same' },
  { x: [3, 2, 3, 2, 2], kernel: [2, 2, 2], outShape: [3, 4, 6, 4, 4], stride: 2, pad: 'valid' },
  { x: [2, 3, 4, 3, 4], kernel: [3, 1, 2], outShape: [2, 5, 4, 4, 3], stride: 1, pad: 'valid' },
  { x: [2, 3, 2, 4, 3], kernel: [1, 1, 1], outShape: [2, 3, 2, 4, 2], stride: 1, pad: 'same' },
];

export interface Pool3dCase {
  x: Shape5;
  filter: number | Triple;
  stride: number | Triple;
  pad: 'same' | 'valid';
}

export const pool3dCases: Pool3dCase[] = [];
for (const pad of ['same', 'valid'] as const) {
  for (const x of [
    [2, 7, 6, 5, 3],
    [2, 8, 4, 6, 2],
  ] as Shape5[]) {
    pool3dCases.push({ x, filter: 2, stride: 2, pad });
    pool3dCases.push({ x, filter: 3, stride: 2, pad });
    pool3dCases.push({ x, filter: 3, stride: 1, pad });
    pool3dCases.push({ x, filter: [3, 2, 2], stride: [1, 2, 2], pad });
  }
}

/**
 * Pooling inputs two ways: uniform in [-1, 1] (whole windows ≤ 0 occur), and on a coarse grid with many exact
 * ties, as after a ReLU (on ties cpu sends the gradient to the last maximum in scan order).
 */
export function poolInputs(count: number, seed: number): [string, Float32Array][] {
  const smooth = randomValues(count, seed);
  return [
    ['uniform', smooth],
    ['ties', smooth.map((v) => Math.max(0, Math.round(v * 2) / 2))],
  ];
}

// flow's 3D kernels on wasm (lib/tf/wasm-kernels-3d.ts) must give the cpu backend's forward outputs and
// gradients (the reference implementation in tfjs) for every stride/padding/kernel a 3D U-Net and its variants
// use. wasm's own Conv3DBackpropInputV2 is wrong for every case below and its Conv3DBackpropFilterV2 for every
// stride-2 case; its MaxPool3D returns +1.2e-38 for windows whose values are all negative: without flow's
// registration these tests fail. (flow's rank-5 SplitV and Sum are for speed; they must stay exact.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Scalar, Tensor, Tensor5D, Variable } from '@tensorflow/tfjs-core';
import { initBackend, getTf, getLayers } from '../../lib/tf/backend.js';
import { registerWasm3dKernels, restoreWasmOwn3dKernels, usesFlowWasm3dKernels } from '../../lib/tf/wasm-kernels-3d.js';
import { relativeError } from '../helpers/tensors.js';
import {
  conv3dCases as convCases,
  pool3dCases as poolCases,
  outputAndGrads,
  randomValues,
  size,
  transpose3dCases as transposeCases,
  type Conv3dCase as ConvCase,
  type Pool3dCase as PoolCase,
  type Shape5,
  type Transpose3dCase as TransposeCase,
} from './kernel-cases.js';

type Tf = ReturnType<typeof getTf>;
type Backend = 'wasm' | 'cpu';

async function useBackend(backend: Backend): Promise<Tf> {
  await initBackend(backend);
  const tf = getTf();
  if (backend === 'wasm') registerWasm3dKernels(tf);
  return tf;
}

function assertClose(wasm: Float32Array[], cpu: Float32Array[], label: string, tolerance = 1e-4): void {
  const parts = ['output', 'input gradient', 'filter gradient'];
  for (let i = 0; i < cpu.length; i++) {
    const error = relativeError(wasm[i]!, cpu[i]!);
    assert.ok(error < tolerance, `${parts[i]} differs (relative error ${error.toExponential(2)}): ${label}`);
  }
}

async function conv3dRun(backend: Backend, c: ConvCase): Promise<Float32Array[]> {
  const tf = await useBackend(backend);
  const filterShape: Shape5 = [...c.kernel, c.x[4], c.outChannels];
  const x = tf.tensor(randomValues(size(c.x), 1), c.x);
  const w = tf.tensor(randomValues(size(filterShape), 2), filterShape);
  return outputAndGrads(tf, (a, b) => tf.conv3d(a as Tensor5D, b as Tensor5D, c.stride, c.pad), [x, w]);
}

test('flow registers its own Conv3D, Conv3DBackpropInputV2/FilterV2, MaxPool3D(Grad), SplitV and Sum on wasm', async () => {
  const tf = await useBackend('wasm');
  assert.ok(usesFlowWasm3dKernels(tf), 'a wasm 3D kernel is not flow\'s');
  registerWasm3dKernels(tf); // idempotent
  assert.ok(usesFlowWasm3dKernels(tf));
  // The bench's way back to wasm's own kernels, and forth again.
  restoreWasmOwn3dKernels(tf);
  assert.ok(!usesFlowWasm3dKernels(tf));
  assert.ok(tf.getKernel('Conv3D', 'wasm') !== undefined && tf.getKernel('MaxPool3DGrad', 'wasm') !== undefined);
  registerWasm3dKernels(tf);
  assert.ok(usesFlowWasm3dKernels(tf));
});

test('wasm conv3d forward and gradients equal cpu (strides 1, 2, mixed; same/valid; 1³, 2³, 3³, 3x1x2)', async () => {
  for (const c of convCases) {
    const wasm = await conv3dRun('wasm', c);
    const cpu = await conv3dRun('cpu', c);
    assertClose(wasm, cpu, `x [${c.x}] kernel [${c.kernel}] → ${c.outChannels} stride ${c.stride} ${c.pad}`);
  }
});

test('wasm conv3dTranspose forward and gradients equal cpu (the 3D U-Net up-sampling path)', async () => {
  const run = async (backend: Backend, c: TransposeCase) => {
    const tf = await useBackend(backend);
    // conv3dTranspose filters are [kd, kh, kw, outChannels, inChannels].
    const filterShape: Shape5 = [...c.kernel, c.outShape[4], c.x[4]];
    const x = tf.tensor(randomValues(size(c.x), 3), c.x);
    const w = tf.tensor(randomValues(size(filterShape), 4), filterShape);
    return outputAndGrads(tf, (a, b) => tf.conv3dTranspose(a as Tensor5D, b as Tensor5D, c.outShape, c.stride, c.pad), [x, w]);
  };
  for (const c of transposeCases) {
    const wasm = await run('wasm', c);
    const cpu = await run('cpu', c);
    assertClose(wasm, cpu, `x [${c.x}] kernel [${c.kernel}] → [${c.outShape}] stride ${c.stride} ${c.pad}`);
  }
});

async function poolRun(backend: Backend, c: PoolCase, kind: 'max' | 'avg', values: Float32Array): Promise<Float32Array[]> {
  const tf = await useBackend(backend);
  const pool = (a: Tensor) =>
    kind === 'max' ? tf.maxPool3d(a as Tensor5D, c.filter, c.stride, c.pad) : tf.avgPool3d(a as Tensor5D, c.filter, c.stride, c.pad);
  const x = tf.tensor(values, c.x);
  const y = pool(x);
  const [dx] = tf.grads((a: Tensor): Scalar => tf.sum(tf.square(pool(a))))([x]);
  const out = [(await y.data()) as Float32Array, (await dx!.data()) as Float32Array];
  tf.dispose([x, y, dx!]);
  return out;
}

test('wasm maxPool3d / avgPool3d forward and gradients equal cpu, with negative inputs and ties', async () => {
  for (const kind of ['max', 'avg'] as const) {
    for (const c of poolCases) {
      // Uniform in [-1, 1] (whole windows ≤ 0 occur), and values on a coarse grid with many exact ties, as
      // after a ReLU: on ties cpu sends the gradient to the last maximum in (d, h, w) order.
      const smooth = randomValues(size(c.x), 5);
      const tied = smooth.map((v) => Math.max(0, Math.round(v * 2) / 2));
      for (const [name, values] of [
        ['uniform', smooth],
        ['ties', tied],
      ] as const) {
        const wasm = await poolRun('wasm', c, kind, values);
        const cpu = await poolRun('cpu', c, kind, values);
        const label = `${kind}Pool3d ${name} x [${c.x}] filter ${c.filter} stride ${c.stride} ${c.pad}`;
        assert.ok(relativeError(wasm[0]!, cpu[0]!) < 1e-6, `output differs: ${label}`);
        assert.ok(relativeError(wasm[1]!, cpu[1]!) < 1e-5, `input gradient differs: ${label}`);
      }
    }
  }
});

test('wasm split, concat and sum of rank-4/5 tensors (block-copy SplitV / Concat, column-sum Sum) equal cpu', async () => {
  const shape: Shape5 = [2, 3, 4, 5, 6];
  const values = randomValues(size(shape), 11);
  const run = async (backend: Backend) => {
    const tf = await useBackend(backend);
    const x = tf.tensor(values, shape);
    const xInt = tf.tensor(Int32Array.from(values, (v) => Math.round(v * 100)), shape, 'int32');
    const out: (Float32Array | Int32Array)[] = [];
    const splits: [Tensor, number[] | number, number][] = [
      [x, [2, 4], 4], // a skip concatenation's channels
      [x, [1, 3, 1], 3],
      [x, 3, 1],
      [x, [1, 1], 0],
      [xInt, [5, 1], 4],
      [tf.reshape(x, [6, 4, 5, 6]), [2, 4], 3], // rank 4: a 2D skip concatenation's channels
      [tf.reshape(x, [6, 4, 5, 6]), [1, 3], 1],
      [tf.reshape(x, [24, 5, 6]), [2, 4], 2], // rank 3: wasm's own kernel
    ];
    for (const [t, sizes, axis] of splits) {
      for (const piece of tf.split(t, sizes, axis)) {
        out.push((await piece.data()) as Float32Array | Int32Array);
        piece.dispose();
      }
    }
    // Concat: the inverse, on pieces of unequal width (channel runs shorter and longer than a block copy's 32).
    const x4 = tf.reshape(x, [6, 4, 5, 6]);
    const wide = tf.tensor(randomValues(6 * 4 * 5 * 40, 12), [6, 4, 5, 40]);
    const concats: [Tensor[], number][] = [
      [tf.split(x, [2, 4], 4), 4],
      [tf.split(x, [1, 2], 1), 1],
      [[x4, wide, x4], 3],
      [[x4, x4], 0],
      [[tf.reshape(x4, [24, 5, 6]), tf.reshape(x4, [24, 5, 6])], 2], // rank 3: wasm's own kernel
      [[xInt, xInt], 4], // int32: wasm's own kernel
    ];
    for (const [parts, axis] of concats) {
      const joined = tf.concat(parts, axis);
      out.push((await joined.data()) as Float32Array | Int32Array);
      joined.dispose();
    }
    tf.dispose([x4, wide]);
    const sums: [number[], boolean][] = [
      [[0, 1, 2, 3], false], // a bias gradient
      [[0, 1, 2, 3, 4], false], // a loss
      [[0, 1], true],
      [[0], false],
      [[1, 3], false], // not leading: wasm's own kernel
      [[4], true],
    ];
    for (const [axes, keepDims] of sums) {
      const total = tf.sum(x, axes, keepDims);
      assert.deepEqual(total.shape, shape.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_d, i) => keepDims || !axes.includes(i)));
      out.push((await total.data()) as Float32Array);
      total.dispose();
    }
    const biasGradient = tf.sum(tf.reshape(x, [6, 4, 5, 6]), [0, 1, 2]); // rank 4: a 2D bias gradient
    out.push((await biasGradient.data()) as Float32Array);
    biasGradient.dispose();
    tf.dispose([x, xInt]);
    return out;
  };
  const wasm = await run('wasm');
  const cpu = await run('cpu');
  assert.equal(wasm.length, cpu.length);
  for (let i = 0; i < cpu.length; i++) {
    if (i < cpu.length - 7) assert.deepEqual(wasm[i], cpu[i], `split piece or concatenation ${i} differs`);
    else assert.ok(relativeError(wasm[i]!, cpu[i]!) < 1e-6, `sum ${i - (cpu.length - 7)} differs`);
  }
});

test('wasm 3D kernels refuse dilations and free every intermediate', async () => {
  const tf = await useBackend('wasm');
  const x = tf.tensor(randomValues(2 * 6 * 6 * 6 * 2, 6), [2, 6, 6, 6, 2]) as Tensor5D;
  const w = tf.tensor(randomValues(3 * 3 * 3 * 2 * 3, 7), [3, 3, 3, 2, 3]) as Tensor5D;
  const upFilter = tf.tensor(randomValues(2 * 2 * 2 * 3 * 2, 8), [2, 2, 2, 3, 2]) as Tensor5D;
  assert.throws(() => tf.conv3d(x, w, 1, 'same', 'NDHWC', 2), /dilation/);
  const backend = tf.engine().backend;
  const dataBefore = backend.numDataIds();
  const tensorsBefore = tf.memory().numTensors;
  for (const stride of [1, 2]) {
    const [dx, dw] = tf.grads((a: Tensor, b: Tensor): Scalar =>
      tf.sum(tf.square(tf.maxPool3d(tf.conv3d(a as Tensor5D, b as Tensor5D, stride, 'same'), 2, 2, 'same'))),
    )([x, w]);
    const up = tf.conv3dTranspose(x, upFilter, [2, 12, 12, 12, 3], 2, 'same');
    tf.dispose([dx!, dw!, up]);
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'tensors leaked');
  assert.equal(backend.numDataIds(), dataBefore, 'wasm heap buffers leaked');
  tf.dispose([x, w, upFilter]);
});

test('a tiny 3D U-Net training gradient under wasm equals cpu (conv, max pooling, transposed conv, concat)', async () => {
  const grads = async (backend: Backend) => {
    const tf = await useBackend(backend);
    const tfl = getLayers();
    const seeded = (seed: number) => tfl.initializers.glorotUniform({ seed });
    const input = tfl.input({ shape: [8, 8, 8, 2] });
    const conv = (filters: number, kernel: number, seed: number, activation: 'relu' | 'softmax' = 'relu') =>
      tfl.layers.conv3d({ filters, kernelSize: kernel, padding: 'same', activation, kernelInitializer: seeded(seed), biasInitializer: 'zeros' });
    const skip = conv(4, 3, 1).apply(input) as import('@tensorflow/tfjs-layers').SymbolicTensor;
    const down = tfl.layers.maxPooling3d({ poolSize: 2, strides: 2, padding: 'same' }).apply(skip);
    const bottom = conv(8, 3, 2).apply(down);
    const up = tfl.layers
      .conv3dTranspose({ filters: 4, kernelSize: 2, strides: 2, padding: 'same', kernelInitializer: seeded(3), biasInitializer: 'zeros' })
      .apply(bottom) as import('@tensorflow/tfjs-layers').SymbolicTensor;
    const merged = tfl.layers.concatenate().apply([skip, up]);
    const output = conv(3, 1, 4, 'softmax').apply(merged) as import('@tensorflow/tfjs-layers').SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const x = tf.tensor(randomValues(2 * 8 * 8 * 8 * 2, 9), [2, 8, 8, 8, 2]);
    const classes = tf.tensor1d(
      Array.from(randomValues(2 * 8 * 8 * 8, 10), (v) => (v < -0.3 ? 0 : v < 0.4 ? 1 : 2)),
      'int32',
    );
    const y = tf.reshape(tf.oneHot(classes, 3), [2, 8, 8, 8, 3]);
    const weights = model.trainableWeights.map((w) => (w as unknown as { val: Variable }).val);
    const { value, grads: g } = tf.variableGrads(() => {
      const p = model.apply(x, { training: true }) as Tensor;
      // Categorical cross-entropy of the softmax output.
      return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1))), -1))) as Scalar;
    }, weights);
    // By position: variable names carry per-model suffixes.
    const out = [];
    for (const w of weights) out.push((await g[w.name]!.data()) as Float32Array);
    out.push((await value.data()) as Float32Array);
    tf.dispose([x, classes, y, value, ...Object.values(g)]);
    model.dispose();
    return out;
  };
  const wasm = await grads('wasm');
  const cpu = await grads('cpu');
  assert.equal(wasm.length, 9); // 4 layers × (kernel, bias) + the loss
  for (let i = 0; i < cpu.length; i++) {
    const error = relativeError(wasm[i]!, cpu[i]!);
    assert.ok(error < 1e-3, `${i === cpu.length - 1 ? 'loss' : `gradient ${i}`} differs between wasm and cpu (relative error ${error.toExponential(2)})`);
  }
});

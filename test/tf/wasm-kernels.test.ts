// The wasm kernels flow registers must give the cpu backend's results and gradients (the reference
// implementation in tfjs) for every stride/padding/kernel combination a U-Net and its variants use. These run
// on the native convolutions when flow-native-conv is built; wasm-kernels-fallback.test.ts runs them again
// with FLOW_NATIVE_CONV=0, on the XNNPACK-composed kernels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { nativeConvStatus } from '../../lib/tf/native-conv.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { relativeError } from '../helpers/tensors.js';
import { conv2dCases as cases, randomValues, type Conv2dCase as ConvCase } from './kernel-cases.js';

type Tf = ReturnType<typeof getTf>;
type Backend = 'wasm' | 'cpu';

async function convGradients(backend: Backend, c: ConvCase): Promise<[Float32Array, Float32Array]> {
  await initBackend(backend);
  const tf: Tf = getTf();
  const filterShape = [c.kernel[0], c.kernel[1], c.x[3], c.outChannels] as [number, number, number, number];
  const x = tf.tensor4d(randomValues(c.x.reduce((a, b) => a * b, 1), 1), c.x);
  const w = tf.tensor4d(randomValues(filterShape.reduce((a, b) => a * b, 1), 2), filterShape);
  // A non-uniform upstream gradient (the square) so every dy element differs.
  const loss = (a: typeof x, b: typeof w) => {
    const y = tf.conv2d(a, b, c.stride, c.pad);
    return tf.sum(tf.mul(y, y));
  };
  const [dx, dw] = tf.grads(loss as (...args: import('@tensorflow/tfjs-core').Tensor[]) => import('@tensorflow/tfjs-core').Tensor)([x, w]);
  const result: [Float32Array, Float32Array] = [(await dx!.data()) as Float32Array, (await dw!.data()) as Float32Array];
  tf.dispose([x, w, dx!, dw!]);
  return result;
}

test('wasm Conv2DBackpropInput/Filter equal the cpu backend (strides 1,2; same/valid; 1x1, 2x2, 3x3)', async () => {
  for (const c of cases) {
    const [dxWasm, dwWasm] = await convGradients('wasm', c);
    const [dxCpu, dwCpu] = await convGradients('cpu', c);
    const label = `x ${c.x} kernel ${c.kernel} stride ${c.stride} ${c.pad}`;
    assert.ok(relativeError(dxWasm, dxCpu) < 1e-4, `input gradient differs: ${label}`);
    assert.ok(relativeError(dwWasm, dwCpu) < 1e-4, `filter gradient differs: ${label}`);
  }
});

test('wasm conv2dTranspose forward and gradients equal cpu (the U-Net up-sampling path)', async () => {
  const run = async (backend: Backend) => {
    await initBackend(backend);
    const tf = getTf();
    const x = tf.tensor4d(randomValues(2 * 4 * 5 * 6, 3), [2, 4, 5, 6]);
    const w = tf.tensor4d(randomValues(2 * 2 * 3 * 6, 4), [2, 2, 3, 6]);
    const f = (a: typeof x, b: typeof w) => tf.sum(tf.square(tf.conv2dTranspose(a, b, [2, 8, 10, 3], 2, 'same')));
    const y = tf.conv2dTranspose(x, w, [2, 8, 10, 3], 2, 'same');
    const [dx, dw] = tf.grads(f as (...args: import('@tensorflow/tfjs-core').Tensor[]) => import('@tensorflow/tfjs-core').Tensor)([x, w]);
    const out = [await y.data(), await dx!.data(), await dw!.data()];
    tf.dispose([x, w, y, dx!, dw!]);
    return out;
  };
  const wasm = await run('wasm');
  const cpu = await run('cpu');
  for (let i = 0; i < 3; i++) assert.ok(relativeError(wasm[i]!, cpu[i]!) < 1e-4, `part ${i} differs`);
});

test('wasm Tile (block-copy replacement) matches cpu exactly, including batch-norm-style broadcasts', async () => {
  const shapes: [number[], number[]][] = [
    [[1, 1, 1, 5], [2, 3, 4, 1]],
    [[2, 3], [3, 2]],
    [[3, 1, 2], [1, 4, 1]],
    [[4], [3]],
    [[2, 2, 2], [1, 1, 1]],
  ];
  for (const [shape, reps] of shapes) {
    const values = randomValues(shape.reduce((a, b) => a * b, 1), 5);
    const out: Float32Array[] = [];
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend(backend);
      const tf = getTf();
      const tiled = tf.tile(tf.tensor(values, shape), reps);
      out.push((await tiled.data()) as Float32Array);
      tiled.dispose();
    }
    assert.deepEqual(out[0], out[1], `tile ${shape} by ${reps}`);
  }
});

test('wasm Identity shares its input\'s data: a clone outlives its source and frees nothing twice', async () => {
  await initBackend('wasm');
  const tf = getTf();
  const before = tf.memory().numTensors;
  const x = tf.tensor([1, 2, 3, 4], [2, 2]);
  const y = tf.clone(x);
  const z = tf.clone(y);
  assert.ok(y.dataId === x.dataId && z.dataId === x.dataId, 'the clones share the source\'s data');
  x.dispose();
  y.dispose();
  assert.deepEqual(Array.from(await z.data()), [1, 2, 3, 4]);
  z.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('wasm maxPool gradient equals cpu (2x2 / 3x3 windows, strides 1-2, same/valid, ties and negative values)', async () => {
  // Values rounded to a coarse grid so windows hold ties (the first maximum in window order takes the gradient)
  // and all-negative windows.
  const values = Float32Array.from(randomValues(2 * 7 * 6 * 5, 9), (v) => Math.round(v * 3) / 3 - 0.2);
  for (const [window, stride] of [[2, 2], [3, 2], [3, 1], [2, 1]] as const) {
    for (const pad of ['same', 'valid'] as const) {
      const out: Float32Array[] = [];
      for (const backend of ['wasm', 'cpu'] as const) {
        await initBackend(backend);
        const tf = getTf();
        const x = tf.tensor4d(values, [2, 7, 6, 5]);
        const pooled = (a: typeof x) => tf.maxPool(a, window, stride, pad);
        // A non-uniform upstream gradient: the pooled values times their position.
        const shape = pooled(x).shape;
        const weights = tf.reshape(tf.range(1, shape.reduce((a, b) => a * b, 1) + 1), shape);
        const [dx] = tf.grads((a: import('@tensorflow/tfjs-core').Tensor) => tf.sum(tf.mul(pooled(a as typeof x), weights)))([x]);
        out.push((await dx!.data()) as Float32Array);
        tf.dispose([x, weights, dx!]);
      }
      for (let i = 0; i < out[1]!.length; i++) assert.ok(Math.abs(out[0]![i]! - out[1]![i]!) <= 1e-6 * Math.max(1, Math.abs(out[1]![i]!)), `window ${window} stride ${stride} ${pad}: dx[${i}] ${out[0]![i]} vs ${out[1]![i]}`);
    }
  }
});

test('a full U-Net training gradient under wasm matches cpu (BN, pooling, concat, transposed conv)', async () => {
  const grads = async (backend: Backend) => {
    await initBackend(backend);
    const tf = getTf();
    const model = buildUNet({ inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 7 });
    const x = tf.tensor4d(randomValues(2 * 16 * 16 * 3, 8), [2, 16, 16, 3]);
    const y = tf.tensor4d(
      randomValues(2 * 16 * 16, 9).map((v) => (v > 0 ? 1 : 0)),
      [2, 16, 16, 1],
    );
    const { grads: g } = tf.variableGrads(() => {
      const p = model.apply(x, { training: true }) as import('@tensorflow/tfjs-core').Tensor;
      return tf.mean(tf.losses.sigmoidCrossEntropy(y, p)) as import('@tensorflow/tfjs-core').Scalar;
    });
    const named: Record<string, Float32Array> = {};
    for (const [name, tensor] of Object.entries(g)) named[name] = (await tensor.data()) as Float32Array;
    tf.dispose([x, y, ...Object.values(g)]);
    model.dispose();
    return named;
  };
  const wasm = await grads('wasm');
  const cpu = await grads('cpu');
  assert.ok(Object.keys(cpu).length > 20);
  for (const name of Object.keys(cpu)) {
    const key = Object.keys(wasm).find((k) => k.replace(/_\d+$/, '') === name.replace(/_\d+$/, '')) ?? name;
    assert.ok(wasm[key] !== undefined, `no wasm gradient for ${name}`);
    assert.ok(relativeError(wasm[key]!, cpu[name]!) < 1e-3, `gradient of ${name} differs between wasm and cpu`);
  }
});

test('fused conv2d (bias + linear / relu / sigmoid, the layers path) forward and gradients equal cpu', async () => {
  const run = async (backend: Backend, activation: 'linear' | 'relu' | 'sigmoid', stride: 1 | 2) => {
    await initBackend(backend);
    const tf = getTf();
    const x = tf.tensor4d(randomValues(2 * 7 * 6 * 3, 11), [2, 7, 6, 3]);
    const w = tf.tensor4d(randomValues(3 * 3 * 3 * 5, 12), [3, 3, 3, 5]);
    const b = tf.tensor1d(randomValues(5, 13));
    const f = (a: typeof x, filter: typeof w, bias: typeof b) => tf.sum(tf.square(tf.fused.conv2d({ x: a, filter, bias, strides: stride, pad: 'same', activation })));
    const y = tf.fused.conv2d({ x, filter: w, bias: b, strides: stride, pad: 'same', activation });
    const grads = tf.grads(f as (...args: import('@tensorflow/tfjs-core').Tensor[]) => import('@tensorflow/tfjs-core').Tensor)([x, w, b]);
    const out = [await y.data(), ...(await Promise.all(grads.map((g) => g.data())))];
    tf.dispose([x, w, b, y, ...grads]);
    return out;
  };
  for (const activation of ['linear', 'relu', 'sigmoid'] as const) {
    for (const stride of [1, 2] as const) {
      const wasm = await run('wasm', activation, stride);
      const cpu = await run('cpu', activation, stride);
      for (let i = 0; i < cpu.length; i++) assert.ok(relativeError(wasm[i]!, cpu[i]!) < 1e-4, `${activation} stride ${stride}: part ${i} differs`);
    }
  }
});

test('the convolution kernels in use are the native ones when flow-native-conv is built, unless FLOW_NATIVE_CONV=0', async () => {
  const info = await initBackend('wasm');
  const status = nativeConvStatus();
  assert.ok(status !== null, 'initBackend(wasm) decides about native convolutions');
  let built = false;
  try {
    const dir = path.dirname(createRequire(import.meta.url).resolve('flow-native-conv/package.json'));
    built = fs.existsSync(path.join(dir, 'build', 'Release', 'flow_native_conv.node'));
  } catch {
    built = false;
  }
  const off = process.env.FLOW_NATIVE_CONV === '0';
  assert.equal(status.active, built && !off, status.detail);
  assert.match(info.kernels, status.active ? /native: im2col \+ flow GEMM/ : /XNNPACK/);
  // CI runs npm ci with a C++ toolchain and without OpenBLAS (.ci/run): the addon must have been built there.
  if (process.env.CI === 'true' && !off) assert.ok(built, 'CI: flow-native-conv was not built by npm ci');
  // The micro-kernel the addon picked matches the CPU (Linux says in /proc/cpuinfo; elsewhere unchecked).
  const flags = fs.existsSync('/proc/cpuinfo') ? (/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/) : null;
  if (status.active && flags !== null) {
    const avx2 = flags.includes('avx2') && flags.includes('fma') && process.env.FLOW_NATIVE_PORTABLE === undefined;
    assert.match(status.detail, avx2 ? /AVX2\+FMA 6x16 micro-kernel/ : /portable C\+\+ micro-kernel/);
  }
});

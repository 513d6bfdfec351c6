// Every kernel flow's 2D and 3D U-Nets and losses use must give, on webgpu, the cpu backend's forward results
// and gradients, on the same cases as the wasm kernel tests (test/tf/kernel-cases.ts). These run wherever Dawn
// finds a WebGPU adapter; elsewhere (CI, machines without a GPU or Vulkan) each test reports itself skipped,
// with the reason. bench/gpu.sh runs them on a GPU machine.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor, Tensor4D, Tensor5D } from '@tensorflow/tfjs-core';
import { getTf, initBackend } from '../../lib/tf/backend.js';
import { probeWebGpu, adapterSummary } from '../../lib/tf/webgpu.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { LocalGradientEngine } from '../../lib/train/gradients.js';
import type { LossName } from '../../lib/train/hparams.js';
import { relativeError } from '../helpers/tensors.js';
import {
  conv2dCases,
  conv3dCases,
  outputAndGrads,
  pool3dCases,
  poolInputs,
  randomValues,
  size,
  transpose3dCases,
  type Shape5,
  type Tf,
} from './kernel-cases.js';

type Backend = 'webgpu' | 'cpu';

/** null when webgpu can run here, else why not (the skip reason). */
const unavailable: string | null = await probeWebGpu().then(
  (facts) => {
    console.log(`# webgpu adapter: ${adapterSummary(facts)}`);
    return null;
  },
  (error: unknown) => `no WebGPU adapter here: ${error instanceof Error ? error.message : String(error)}`,
);
const options = { skip: unavailable ?? false };
// Once a WebGPU device exists dawn.node keeps the event loop busy for good: end the process after the tests.
after(() => void setTimeout(() => process.exit(), 1000).unref());

async function use(backend: Backend): Promise<Tf> {
  await initBackend(backend);
  return getTf();
}

/** Runs `f` on webgpu and on cpu and compares every output array. */
async function compare(label: string, f: (tf: Tf) => Promise<Float32Array[]>, tolerance = 1e-4): Promise<void> {
  const gpu = await f(await use('webgpu'));
  const cpu = await f(await use('cpu'));
  assert.equal(gpu.length, cpu.length, label);
  for (let i = 0; i < cpu.length; i++) {
    const error = relativeError(gpu[i]!, cpu[i]!);
    assert.ok(error < tolerance, `${label}: part ${i} differs (relative error ${error.toExponential(2)})`);
  }
}

test('webgpu is the backend initBackend starts when forced, with its adapter recorded', options, async () => {
  const info = await initBackend('webgpu');
  assert.equal(info.name, 'webgpu');
  assert.equal(getTf().getBackend(), 'webgpu');
  assert.ok(info.adapter !== undefined && info.adapter.limits.maxStorageBufferBindingSize! > 0, 'adapter limits recorded');
});

test('webgpu conv2d forward and gradients equal cpu (strides 1,2; same/valid; 1x1, 2x2, 3x3; 2-16 channels)', options, async () => {
  for (const c of conv2dCases) {
    await compare(`conv2d x ${c.x} kernel ${c.kernel} → ${c.outChannels} stride ${c.stride} ${c.pad}`, async (tf) => {
      const filterShape = [c.kernel[0], c.kernel[1], c.x[3], c.outChannels];
      const x = tf.tensor(randomValues(size(c.x), 1), c.x);
      const w = tf.tensor(randomValues(size(filterShape), 2), filterShape);
      return outputAndGrads(tf, (a, b) => tf.conv2d(a as Tensor4D, b as Tensor4D, c.stride, c.pad), [x, w]);
    });
  }
});

test('webgpu conv2dTranspose forward and gradients equal cpu (the U-Net up-sampling path)', options, async () => {
  for (const [inShape, outShape, kernel] of [
    [[2, 4, 5, 6], [2, 8, 10, 3], 2],
    [[1, 3, 3, 8], [1, 6, 6, 16], 2],
    [[2, 4, 4, 4], [2, 8, 8, 2], 3],
  ] as [number[], [number, number, number, number], number][]) {
    await compare(`conv2dTranspose ${inShape} → ${outShape} kernel ${kernel}`, async (tf) => {
      const filterShape = [kernel, kernel, outShape[3], inShape[3]!];
      const x = tf.tensor(randomValues(size(inShape), 3), inShape);
      const w = tf.tensor(randomValues(size(filterShape), 4), filterShape);
      return outputAndGrads(tf, (a, b) => tf.conv2dTranspose(a as Tensor4D, b as Tensor4D, outShape, 2, 'same'), [x, w]);
    });
  }
});

test('webgpu fused conv2d (bias + linear / relu / sigmoid, the layers path) forward and gradients equal cpu', options, async () => {
  for (const activation of ['linear', 'relu', 'sigmoid'] as const) {
    for (const stride of [1, 2] as const) {
      await compare(`fused conv2d ${activation} stride ${stride}`, async (tf) => {
        const x = tf.tensor(randomValues(2 * 7 * 6 * 3, 11), [2, 7, 6, 3]);
        const w = tf.tensor(randomValues(3 * 3 * 3 * 5, 12), [3, 3, 3, 5]);
        const b = tf.tensor(randomValues(5, 13), [5]);
        return outputAndGrads(
          tf,
          (a, filter, bias) => tf.fused.conv2d({ x: a as Tensor4D, filter: filter as Tensor4D, bias: bias!, strides: stride, pad: 'same', activation }),
          [x, w, b],
        );
      });
    }
  }
});

test('webgpu maxPool2d forward and gradients equal cpu, with negative inputs and ties', options, async () => {
  for (const [name, values] of poolInputs(2 * 9 * 8 * 3, 21)) {
    for (const [filter, stride, pad] of [
      [2, 2, 'same'],
      [2, 2, 'valid'],
      [3, 2, 'same'],
    ] as [number, number, 'same' | 'valid'][]) {
      await compare(`maxPool2d ${name} filter ${filter} stride ${stride} ${pad}`, async (tf) => {
        const x = tf.tensor(values, [2, 9, 8, 3]);
        return outputAndGrads(tf, (a) => tf.maxPool(a as Tensor4D, filter, stride, pad), [x]);
      }, 1e-5);
    }
  }
});

test('webgpu conv3d forward and gradients equal cpu (strides 1, 2, mixed; same/valid; 1³, 2³, 3³, 3x1x2)', options, async () => {
  for (const c of conv3dCases) {
    await compare(`conv3d x [${c.x}] kernel [${c.kernel}] → ${c.outChannels} stride ${c.stride} ${c.pad}`, async (tf) => {
      const filterShape: Shape5 = [...c.kernel, c.x[4], c.outChannels];
      const x = tf.tensor(randomValues(size(c.x), 1), c.x);
      const w = tf.tensor(randomValues(size(filterShape), 2), filterShape);
      return outputAndGrads(tf, (a, b) => tf.conv3d(a as Tensor5D, b as Tensor5D, c.stride, c.pad), [x, w]);
    });
  }
});

test('webgpu conv3dTranspose forward and gradients equal cpu (the 3D U-Net up-sampling path)', options, async () => {
  for (const c of transpose3dCases) {
    await compare(`conv3dTranspose x [${c.x}] kernel [${c.kernel}] → [${c.outShape}] stride ${c.stride} ${c.pad}`, async (tf) => {
      // conv3dTranspose filters are [kd, kh, kw, outChannels, inChannels].
      const filterShape: Shape5 = [...c.kernel, c.outShape[4], c.x[4]];
      const x = tf.tensor(randomValues(size(c.x), 3), c.x);
      const w = tf.tensor(randomValues(size(filterShape), 4), filterShape);
      return outputAndGrads(tf, (a, b) => tf.conv3dTranspose(a as Tensor5D, b as Tensor5D, c.outShape, c.stride, c.pad), [x, w]);
    });
  }
});

test('webgpu maxPool3d / avgPool3d forward and gradients equal cpu, with negative inputs and ties', options, async () => {
  for (const kind of ['max', 'avg'] as const) {
    for (const c of pool3dCases) {
      for (const [name, values] of poolInputs(size(c.x), 5)) {
        await compare(`${kind}Pool3d ${name} x [${c.x}] filter ${c.filter} stride ${c.stride} ${c.pad}`, async (tf) => {
          const pool = (a: Tensor) =>
            kind === 'max' ? tf.maxPool3d(a as Tensor5D, c.filter, c.stride, c.pad) : tf.avgPool3d(a as Tensor5D, c.filter, c.stride, c.pad);
          return outputAndGrads(tf, pool, [tf.tensor(values, c.x)]);
        }, 1e-5);
      }
    }
  }
});

/** One training step's loss, output and every weight gradient, as the train stage computes them. */
async function trainingStep(
  tf: Tf,
  inputShape: number[],
  classes: number,
  loss: LossName,
  batchNorm: boolean,
): Promise<Float32Array[]> {
  const model = buildUNet({ inputShape, classes, filters: 4, depth: 2, batchNorm, seed: 7 });
  const count = 2;
  const spatial = size(inputShape.slice(0, -1));
  const x = randomValues(count * size(inputShape), 8);
  const y = Uint8Array.from(randomValues(count * spatial, 9), (v) => Math.min(classes === 1 ? 1 : classes - 1, Math.floor((v + 1) * Math.max(classes, 2) / 2)));
  const engine = new LocalGradientEngine(model, { shape: inputShape, classes, loss });
  const result = await engine.compute(x, y, count);
  const out = [Float32Array.of(result.loss), result.probabilities];
  for (const g of result.grads) out.push((await g.data()) as Float32Array);
  tf.dispose(result.grads);
  model.dispose();
  return out;
}

test('webgpu U-Net training steps equal cpu: 2D bce_dice, 2D with batch norm, 2D softmax ce_dice, 3D ce_dice', options, async () => {
  const cases: [string, number[], number, LossName, boolean][] = [
    ['2D sigmoid bce_dice', [16, 16, 3], 1, 'bce_dice', false],
    ['2D sigmoid bce with batch norm', [16, 16, 3], 1, 'bce', true],
    ['2D softmax ce_dice', [16, 16, 4], 4, 'ce_dice', false],
    ['3D softmax ce_dice', [8, 8, 8, 4], 4, 'ce_dice', false],
  ];
  for (const [label, shape, classes, loss, batchNorm] of cases) {
    await compare(label, (tf) => trainingStep(tf, shape, classes, loss, batchNorm), 1e-3);
  }
});

test('webgpu frees what a training step allocates (no tensor or GPU buffer leak)', options, async () => {
  const tf = await use('webgpu');
  await trainingStep(tf, [16, 16, 3], 1, 'bce_dice', false); // compiles the shaders
  const tensors = tf.memory().numTensors;
  const dataIds = tf.engine().backend.numDataIds();
  await trainingStep(tf, [16, 16, 3], 1, 'bce_dice', false);
  assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
  assert.equal(tf.engine().backend.numDataIds(), dataIds, 'GPU buffers leaked');
});

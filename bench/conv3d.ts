// 3D U-Net training speed on wasm: flow's 3D kernels (lib/tf/wasm-kernels-3d.ts: Conv3D and its gradients
// composed from XNNPACK Conv2D, MaxPool3D/MaxPool3DGrad on the heap) against wasm's own 3D kernels (plain loops;
// their gradients are wrong, so their training steps are timed only to show the cost) and the pure-JS cpu
// backend for one step. The model is built inline: a 3D U-Net with filters 8 and depth 2 (8/16, bottleneck 32;
// conv3d 3x3x3 'same' + ReLU twice per level, maxPooling3d 2, conv3dTranspose kernel 2 stride 2 'same',
// concatenate, 1x1x1 softmax head over 4 classes), input [32,32,32,4], batch 2, Adam, categorical cross-entropy.
// Reference: the issue measured wasm's own Conv3D ~66x slower than PyTorch on CPU.
// Each configuration runs in its own child process (kernel registrations are process-wide).
// Run: node --import tsx bench/conv3d.ts [--quick] [--steps N]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Scalar, Tensor } from '@tensorflow/tfjs-core';
import { initBackend, getTf } from '../lib/tf/backend.js';
import { buildUNet } from '../lib/tf/unet.js';
import { registerWasm3dKernels, restoreWasmOwn3dKernels, usesFlowWasm3dKernels } from '../lib/tf/wasm-kernels-3d.js';
import { Rng } from '../lib/rng.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

const PATCH = 32;
const CHANNELS = 4;
const CLASSES = 4;
const BATCH = 2;
const FILTERS = 8;
const DEPTH = 2;
/** The figure: wasm's own Conv3D against PyTorch on CPU. */
const OWN_VS_PYTORCH = 66;

/** Which kernels a child runs with. */
type Kernels = 'flow' | 'wasm-own' | 'cpu';

interface Measurement {
  kernels: Kernels;
  /** Timed training steps (0: not run). */
  trainSteps: number;
  trainSecondsPerStep: number;
  /** Timed forward passes (inference, training: false). */
  forwardRuns: number;
  forwardSecondsPerRun: number;
  finalLoss: number;
  peakRssMiB: number;
}

async function measure(kernels: Kernels, trainSteps: number, forwardRuns: number): Promise<Measurement> {
  await initBackend(kernels === 'cpu' ? 'cpu' : 'wasm');
  const tf = getTf();
  if (kernels === 'flow') registerWasm3dKernels(tf);
  if (kernels === 'wasm-own') restoreWasmOwn3dKernels(tf);
  if (kernels !== 'cpu' && usesFlowWasm3dKernels(tf) !== (kernels === 'flow')) throw new Error(`wrong 3D kernels registered for ${kernels}`);
  // flow's 3D U-Net as model.build makes it (seeded weights, no batch norm).
  const model = buildUNet({ inputShape: [PATCH, PATCH, PATCH, CHANNELS], classes: CLASSES, filters: FILTERS, depth: DEPTH, batchNorm: false, seed: 1 });
  const rng = new Rng(7);
  const voxels = BATCH * PATCH ** 3;
  const x = tf.tensor5d(new Float32Array(voxels * CHANNELS).map(() => rng.uniform(-1, 1)), [BATCH, PATCH, PATCH, PATCH, CHANNELS]);
  // Labels: four depth slabs, so the loss has something to learn.
  const labels = new Int32Array(voxels).map((_, i) => Math.floor(((i / (PATCH * PATCH)) % PATCH) / (PATCH / CLASSES)));
  const y = tf.tidy(() => tf.reshape(tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES), [BATCH, PATCH, PATCH, PATCH, CLASSES]));
  const optimizer = tf.train.adam(1e-3);
  const lossFn = (): Scalar =>
    tf.tidy(() => {
      const p = tf.clipByValue(model.apply(x, { training: true }) as Tensor, 1e-7, 1);
      return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(p)), -1))) as Scalar;
    });
  const step = async (): Promise<number> => {
    const loss = optimizer.minimize(lossFn, true)!;
    const value = (await loss.data())[0]!;
    loss.dispose();
    return value;
  };
  const forward = async (): Promise<void> => {
    const out = model.predict(x) as Tensor;
    await out.data();
    out.dispose();
  };
  // One warm-up each (XNNPACK operator setup, heap growth) except where a single run takes many seconds.
  const warm = kernels === 'flow';
  let finalLoss = Number.NaN;
  let trainSecondsPerStep = Number.NaN;
  if (trainSteps > 0) {
    if (warm) await step();
    const start = performance.now();
    for (let i = 0; i < trainSteps; i++) finalLoss = await step();
    trainSecondsPerStep = (performance.now() - start) / 1000 / trainSteps;
  }
  let forwardSecondsPerRun = Number.NaN;
  if (forwardRuns > 0) {
    if (warm) await forward();
    const start = performance.now();
    for (let i = 0; i < forwardRuns; i++) await forward();
    forwardSecondsPerRun = (performance.now() - start) / 1000 / forwardRuns;
  }
  return {
    kernels,
    trainSteps,
    trainSecondsPerStep,
    forwardRuns,
    forwardSecondsPerRun,
    finalLoss,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

function runChild(kernels: Kernels, trainSteps: number, forwardRuns: number): Measurement | string {
  const result = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--child', kernels, String(trainSteps), String(forwardRuns)],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
  if (result.status !== 0 || line === undefined) {
    const lastError = result.stderr.split('\n').find((l) => /^\w*Error:/.test(l.trim())) ?? `exit ${result.status}`;
    return lastError.trim();
  }
  return JSON.parse(line) as Measurement;
}

function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 100 ? value.toFixed(0) : value >= 0.01 ? value.toFixed(digits) : value.toPrecision(2);
}

export interface Conv3dBenchOptions extends BenchOptions {
  /** Timed training steps with flow's kernels (default 3, quick 1). */
  steps?: number;
}

const LABEL: Record<Kernels, string> = {
  flow: 'wasm + flow 3D kernels',
  'wasm-own': "wasm's own 3D kernels",
  cpu: 'cpu (pure JS)',
};

export async function run(options: Conv3dBenchOptions): Promise<BenchTable[]> {
  const steps = options.steps ?? (options.quick ? 1 : 3);
  // wasm's own kernels: forward passes always, one (wrong-gradient) training step only in the full run;
  // cpu: one training step, skipped in the quick run (it takes tens of seconds).
  const plan: [Kernels, number, number][] = [
    ['flow', steps, steps],
    ['wasm-own', options.quick ? 0 : 1, 1],
  ];
  if (!options.quick) plan.push(['cpu', 1, 0]);
  const rows: Measurement[] = [];
  const failures: string[] = [];
  for (const [kernels, trainSteps, forwardRuns] of plan) {
    const result = runChild(kernels, trainSteps, forwardRuns);
    if (typeof result === 'string') failures.push(`${kernels}: ${result}`);
    else rows.push(result);
    process.stderr.write(`  measured ${kernels}\n`);
  }
  const voxelsPerPatch = PATCH ** 3;
  const flow = rows.find((r) => r.kernels === 'flow');
  const ratio = (seconds: number, flowSeconds: number | undefined): string =>
    flowSeconds !== undefined && Number.isFinite(seconds) && Number.isFinite(flowSeconds) ? `${fmt(seconds / flowSeconds, 1)}x` : '-';
  const tableRows: string[][] = [];
  for (const r of rows) {
    for (const [mode, seconds, count] of [
      ['train step', r.trainSecondsPerStep, r.trainSteps],
      ['forward', r.forwardSecondsPerRun, r.forwardRuns],
    ] as const) {
      if (count === 0) continue;
      const flowSeconds = mode === 'train step' ? flow?.trainSecondsPerStep : flow?.forwardSecondsPerRun;
      const gradients = mode === 'forward' ? '' : r.kernels === 'wasm-own' ? 'WRONG' : 'correct';
      tableRows.push([
        LABEL[r.kernels],
        mode,
        String(count),
        fmt(seconds, 3),
        fmt(BATCH / seconds, 3),
        fmt((BATCH * voxelsPerPatch) / seconds / 1e6, 3),
        ratio(seconds, flowSeconds),
        gradients,
        fmt(r.peakRssMiB, 0),
      ]);
    }
  }
  const own = rows.find((r) => r.kernels === 'wasm-own');
  const notes = [
    machineLine(),
    `3D U-Net filters ${FILTERS}, depth ${DEPTH} (${FILTERS}/${FILTERS * 2}, bottleneck ${FILTERS * 4}), no batch norm, input [${PATCH},${PATCH},${PATCH},${CHANNELS}], ${CLASSES}-class softmax, batch ${BATCH}, Adam 1e-3, categorical cross-entropy; one child process per row group; wasm single-threaded in Node`,
    `flow rows after one warm-up step/pass; wasm's own and cpu rows without (a single run takes seconds)`,
    "wasm's own Conv3DBackpropInputV2/FilterV2 give wrong gradients and its MaxPool3D is wrong for windows ≤ 0: its training step is timed only to show the cost",
    `reference: the issue measured wasm's own Conv3D ~${OWN_VS_PYTORCH}x slower than PyTorch on CPU`,
  ];
  if (flow && own && Number.isFinite(own.forwardSecondsPerRun) && Number.isFinite(flow.forwardSecondsPerRun)) {
    const speedup = own.forwardSecondsPerRun / flow.forwardSecondsPerRun;
    notes.push(
      `forward: flow's kernels ${fmt(speedup, 1)}x faster than wasm's own (same run); if wasm's own is ~${OWN_VS_PYTORCH}x slower than PyTorch, flow's is roughly ${fmt(OWN_VS_PYTORCH / speedup, 1)}x (an estimate, not a PyTorch measurement)`,
    );
  }
  if (flow) notes.push(`final training loss with flow's kernels: ${fmt(flow.finalLoss, 4)}`);
  if (options.quick) notes.push('quick run: cpu row and wasm-own training step skipped');
  for (const failure of failures) notes.push(`did not run: ${failure}`);
  return [
    {
      title: '3D U-Net training speed on wasm: flow 3D kernels vs wasm own vs cpu',
      columns: ['kernels', 'mode', 'runs', 's/run', 'patches/s', 'Mvoxels/s', 'time vs flow', 'gradients', 'peak RSS MiB'],
      rows: tableRows,
      notes,
    },
  ];
}

if (isMainModule(import.meta.url)) {
  if (process.argv[2] === '--child') {
    const [kernels, trainSteps, forwardRuns] = [process.argv[3] as Kernels, Number(process.argv[4]), Number(process.argv[5])];
    process.stdout.write(`${JSON.stringify(await measure(kernels, trainSteps, forwardRuns))}\n`);
  } else {
    const i = process.argv.indexOf('--steps');
    const steps = i >= 0 ? Number(process.argv[i + 1]) : undefined;
    printTables(await run({ quick: quickFromArgv(), ...(steps !== undefined ? { steps } : {}) }));
  }
}

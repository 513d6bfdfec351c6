// U-Net training/inference speed as a flow user gets it, one table per run. Each row is a configuration the
// train stage can run: its engine (LocalGradientEngine on 1 worker, DataParallelEngine on 2) + TrainOptimizer,
// the Carvana U-Net and settings as pipelines/carvana.yaml has them (filters 16, depth 3, no batch norm, batch 8,
// Adam, BCE + Dice, its augmentation), at 64, 128 and 256 px:
//   wasm with native convolutions on 2 workers (the default), the same on 1 worker, wasm with the XNNPACK-composed
//   kernels on 2 workers (FLOW_NATIVE_CONV=0), and the pure-JS cpu backend for one step at 64 px,
// beside PyTorch's CPU figures measured on this machine class (2 threads: 100 / 24 / 4.2 images/s; 1 thread:
// 66 / 16 / 3.0; goal: at least 0.5x the 2-thread figure using both cores).
// Each row runs in its own child process, so peak RSS (worker threads included) is that configuration's alone.
// Run: node --import tsx bench/train-speed.ts [--quick] [--sizes 64,128,256] [--cpu-sizes 64] [--steps N]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend, type BackendInfo, type BackendName } from '../lib/tf/backend.js';
import { nativeConvStatus } from '../lib/tf/native-conv.js';
import { resolveWorkers } from '../lib/train/parallel.js';
import {
  argValue,
  augmentedBatches,
  carvanaTrainSettings,
  describeSettings,
  startEngine,
  syntheticData,
  timeTrainingSteps,
  timeValidation,
  withBenchModel,
} from './train-parallel.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

/** wasm32 caps each heap at 4 GiB: a row whose batch does not fit is rerun with this batch (and says so). */
const FALLBACK_BATCH = 4;
const PYTORCH_2T: Record<number, number> = { 64: 100, 128: 24, 256: 4.2 };
const PYTORCH_1T: Record<number, number> = { 64: 66, 128: 16, 256: 3.0 };
/** The goal: at least this fraction of PyTorch's 2-thread training images/s. */
const GOAL_VS_PYTORCH_2T = 0.5;
/** The goal for the input pipeline's share of the step time. */
const GOAL_INPUT_SHARE = 0.05;

/** Which convolution kernels a row runs: flow's on wasm (native addon or XNNPACK-composed), or a backend's own. */
type Kernels = 'native' | 'xnnpack' | 'own';

interface RowPlan {
  backend: BackendName;
  kernels: Kernels;
  workers: number;
  size: number;
  batch: number;
  /** Untimed steps first (kernel setup, heap growth); 0 on the pure-JS cpu backend, where a step takes minutes. */
  warmup: number;
  steps: number;
}

interface Measurement extends RowPlan {
  /** BackendInfo.kernels as the child reported it. */
  kernelsDetail: string;
  trainImagesPerSec: number;
  inputShare: number;
  inferImages: number;
  inferImagesPerSec: number;
  peakRssMiB: number;
  finalLoss: number;
}

function label(plan: Pick<RowPlan, 'backend' | 'kernels'>): string {
  if (plan.kernels === 'native') return 'wasm native';
  if (plan.kernels === 'xnnpack') return 'wasm XNNPACK';
  return plan.backend === 'cpu' ? 'cpu (pure JS)' : plan.backend;
}

/** Steps timed per size: enough for a steady figure, few enough that 256 px stays within a minute a row. */
function defaultSteps(size: number, quick: boolean): { warmup: number; steps: number } {
  if (quick) return { warmup: 1, steps: 2 };
  // Enough timed work per row (~3 s at 64 px) that a scheduling hiccup on a shared machine moves the figure little.
  return size <= 64 ? { warmup: 3, steps: 24 } : size <= 128 ? { warmup: 1, steps: 6 } : { warmup: 1, steps: 3 };
}

/** Child side: one row, measured the way the train stage runs it. */
async function measure(plan: RowPlan): Promise<Measurement> {
  const info = await initBackend(plan.backend);
  const native = nativeConvStatus()?.active ?? false;
  if (plan.kernels === 'native' && !native) throw new Error(`native convolutions requested but not active: ${info.kernels}`);
  if (plan.kernels === 'xnnpack' && native) throw new Error('XNNPACK kernels requested but native convolutions are active (FLOW_NATIVE_CONV=0 did not reach the child)');
  const settings = { ...carvanaTrainSettings(), batch: plan.batch };
  return withBenchModel(plan.size, settings, async (model, dir, geometry) => {
    const engine = await startEngine(model, dir, geometry, plan.workers, info.name);
    try {
      // Two batches of items: the input pipeline shuffles and gathers from them like an epoch of the train loop,
      // and validation deals one batch to each thread.
      const data = syntheticData(2 * plan.batch, plan.size, 7);
      const timing = await timeTrainingSteps(engine, model, settings, augmentedBatches(data, geometry.shape, settings, 11), plan.warmup, plan.steps);
      if (plan.warmup > 0) await timeValidation(engine, geometry, data, plan.batch);
      const inferImagesPerSec = await timeValidation(engine, geometry, data, plan.batch);
      return {
        ...plan,
        kernelsDetail: info.kernels,
        trainImagesPerSec: timing.imagesPerSec,
        inputShare: timing.inputShare,
        inferImages: data.count,
        inferImagesPerSec,
        peakRssMiB: process.resourceUsage().maxRSS / 1024,
        finalLoss: timing.finalLoss,
      };
    } finally {
      await engine.dispose();
    }
  });
}

function runChild(plan: RowPlan): Measurement | string {
  const env = { ...process.env };
  if (plan.kernels === 'xnnpack') env.FLOW_NATIVE_CONV = '0';
  const result = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', JSON.stringify(plan)], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env,
    // A row that hangs (a stuck worker thread) fails instead of stalling the whole bench.
    timeout: 20 * 60_000,
  });
  const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
  if (result.status !== 0 || line === undefined) {
    const lines = result.stderr.split('\n').map((l) => l.trim());
    const reason = lines.find((l) => /^\w*Error:/.test(l)) ?? lines.filter((l) => l !== '').at(-1) ?? '';
    return `${reason} (exit ${result.status ?? result.signal})`;
  }
  return JSON.parse(line) as Measurement;
}

/** The planned batch, or FALLBACK_BATCH when it does not fit; both attempts are reported in `notes`. */
function measureRow(plan: RowPlan, notes: string[]): Measurement | null {
  const name = `${label(plan)} ${plan.workers}w ${plan.size}px`;
  process.stderr.write(`  measuring ${name} batch ${plan.batch} ...\n`);
  const first = runChild(plan);
  if (typeof first !== 'string') return first;
  if (plan.batch <= FALLBACK_BATCH) {
    notes.push(`did not run: ${name} batch ${plan.batch}: ${first}`);
    return null;
  }
  process.stderr.write(`  ${name} batch ${plan.batch} failed (${first}); batch ${FALLBACK_BATCH} ...\n`);
  const second = runChild({ ...plan, batch: FALLBACK_BATCH });
  if (typeof second !== 'string') {
    notes.push(`${name}: batch ${plan.batch} failed (${first}); measured with batch ${FALLBACK_BATCH}`);
    return second;
  }
  notes.push(`did not run: ${name}: batch ${plan.batch} (${first}), batch ${FALLBACK_BATCH} (${second})`);
  return null;
}

function fmt(value: number, digits = 2): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

/** PyTorch's reference figures as the issue writes them (66 / 16 / 3.0). */
function reference(value: number): string {
  return value >= 10 ? value.toFixed(0) : value.toFixed(1);
}

/** Ratio to PyTorch's 2-thread figure; the goal applies to rows using both cores, 1-worker rows add the 1-thread ratio. */
function versusPytorch(row: Measurement): string {
  const twoThreads = PYTORCH_2T[row.size];
  const oneThread = PYTORCH_1T[row.size];
  if (twoThreads === undefined || oneThread === undefined) return '-';
  const ratio = row.trainImagesPerSec / twoThreads;
  const text = `${ratio.toFixed(2)}x of ${reference(twoThreads)}`;
  if (row.workers === 1) return `${text} (1T: ${(row.trainImagesPerSec / oneThread).toFixed(2)}x of ${reference(oneThread)})`;
  return `${text}: ${ratio >= GOAL_VS_PYTORCH_2T ? 'met' : 'not met'}`;
}

function percent(share: number): string {
  return `${(100 * share).toFixed(share < 0.01 ? 2 : 1)}%`;
}

export interface TrainSpeedOptions extends BenchOptions {
  sizes?: number[];
  /** Sizes also measured on the pure-JS cpu backend (slow: one step each). */
  cpuSizes?: number[];
  /** Timed steps per wasm row (default: defaultSteps). */
  steps?: number;
}

/** The rows to measure, in order: per size the backend auto picks (if not wasm), then the wasm rows; the cpu rows last. */
function planRows(options: TrainSpeedOptions, picked: BackendInfo, wasm: BackendInfo | null, nativeBuilt: boolean, batch: number): RowPlan[] {
  const sizes = options.sizes ?? (options.quick ? [64] : [64, 128, 256]);
  // One cpu step takes minutes: --quick leaves it out unless asked for.
  const cpuSizes = options.cpuSizes ?? (options.quick ? [] : [64]);
  const plan: RowPlan[] = [];
  for (const size of sizes) {
    const { warmup, steps: defaultCount } = defaultSteps(size, options.quick);
    const steps = options.steps ?? defaultCount;
    const row = (backend: BackendName, kernels: Kernels, workers: number): RowPlan => ({ backend, kernels, workers, size, batch, warmup, steps });
    // A backend auto prefers to wasm (native TensorFlow) is what the user gets: measure it first.
    if (picked.name !== 'wasm' && picked.name !== 'cpu') plan.push(row(picked.name, 'own', resolveWorkers('auto', picked.name)));
    if (wasm === null) continue;
    const workers = resolveWorkers('auto', 'wasm');
    if (nativeBuilt) {
      plan.push(row('wasm', 'native', workers));
      if (workers !== 1) plan.push(row('wasm', 'native', 1));
    }
    plan.push(row('wasm', 'xnnpack', workers));
  }
  for (const size of cpuSizes) plan.push({ backend: 'cpu', kernels: 'own', workers: resolveWorkers('auto', 'cpu'), size, batch, warmup: 0, steps: 1 });
  return plan;
}

export async function run(options: TrainSpeedOptions): Promise<BenchTable[]> {
  const settings = carvanaTrainSettings();
  const picked = await initBackend('auto');
  const notes: string[] = [];
  let wasm: BackendInfo | null = picked.name === 'wasm' ? picked : null;
  if (wasm === null) {
    try {
      wasm = await initBackend('wasm');
    } catch (error) {
      notes.push(`wasm rows skipped: ${(error as Error).message}`);
    }
  }
  const native = nativeConvStatus();
  const nativeBuilt = native?.active ?? false;
  const plan = planRows(options, picked, wasm, nativeBuilt, settings.batch);
  const rows: Measurement[] = [];
  for (const row of plan) {
    const measured = measureRow(row, notes);
    if (measured !== null) rows.push(measured);
  }

  const find = (size: number, kernels: Kernels, workers: number, backend: BackendName = 'wasm') =>
    rows.find((r) => r.size === size && r.kernels === kernels && r.workers === workers && r.backend === backend);
  const defaultWorkers = resolveWorkers('auto', 'wasm');
  const ratios: string[] = [];
  for (const size of [...new Set(rows.map((r) => r.size))]) {
    const best = find(size, nativeBuilt ? 'native' : 'xnnpack', defaultWorkers);
    if (best === undefined) continue;
    const parts: string[] = [];
    const xnnpack = find(size, 'xnnpack', defaultWorkers);
    const single = find(size, best.kernels, 1);
    const cpu = find(size, 'own', resolveWorkers('auto', 'cpu'), 'cpu');
    if (nativeBuilt && xnnpack) parts.push(`native/XNNPACK ${(best.trainImagesPerSec / xnnpack.trainImagesPerSec).toFixed(2)}x train, ${(best.inferImagesPerSec / xnnpack.inferImagesPerSec).toFixed(2)}x infer`);
    if (single && single !== best) parts.push(`${defaultWorkers} workers/1 worker ${(best.trainImagesPerSec / single.trainImagesPerSec).toFixed(2)}x train`);
    if (cpu) parts.push(`vs pure-JS cpu ${fmt(best.trainImagesPerSec / cpu.trainImagesPerSec, 1)}x train, ${fmt(best.inferImagesPerSec / cpu.inferImagesPerSec, 1)}x infer`);
    if (parts.length > 0) ratios.push(`${size}px, ${label(best)} ${defaultWorkers} workers: ${parts.join('; ')}`);
  }
  const kernelsByLabel = new Map(rows.map((r) => [label(r), r.kernelsDetail]));
  const stepsBySize = [...new Set(plan.map((p) => `${p.size}px${p.backend === 'cpu' ? ' cpu' : ''} ${p.warmup} warm-up + ${p.steps} timed`))];

  const allNotes = [
    machineLine(),
    `backend auto picks: ${picked.name} (${picked.package} ${picked.version}, ${picked.threads} thread(s) per backend); ${picked.reason}; kernels: ${picked.kernels}`,
    ...[...kernelsByLabel].map(([name, detail]) => `${name} rows ran with: ${detail === picked.kernels ? 'the same kernels' : detail}`),
    ...(wasm !== null && !nativeBuilt ? [`native convolutions not in use, native rows skipped: ${native?.detail ?? 'unknown'}`] : []),
    `${describeSettings(settings)}; batch ${settings.batch}, augment ${JSON.stringify(settings.augment)}; one child process per row (peak RSS: that process, worker threads included)`,
    `train img/s: the train stage's step (gather + augmentBatch, engine.compute, TrainOptimizer.apply, Dice tally) over the timed steps: ${stepsBySize.join(', ')}`,
    `infer img/s: validation through the engine's evaluate (what the train stage runs each epoch) over 2 batches: on 2 workers one batch per thread, on 1 worker the main thread; after one warm-up pass (none on cpu)`,
    `input share: gather + augmentBatch time / step time (goal < ${percent(GOAL_INPUT_SHARE)})`,
    `baseline: PyTorch on this CPU class, measured separately: 2 threads ${Object.values(PYTORCH_2T).map(reference).join(' / ')}, 1 thread ${Object.values(PYTORCH_1T).map(reference).join(' / ')} img/s at ${Object.keys(PYTORCH_2T).join(' / ')} px; goal >= ${GOAL_VS_PYTORCH_2T}x the 2-thread figure using both cores`,
    ...(plan.some((p) => p.backend === 'cpu') ? [] : ['pure-JS cpu row left out (--quick; a step takes minutes): add --cpu-sizes 64']),
    ...ratios.map((line) => `same run: ${line}`),
    ...notes,
  ];
  return [
    {
      title: 'U-Net training / inference speed, as the train stage runs it',
      columns: ['kernels', 'workers', 'px', 'batch', 'train img/s', 'vs PyTorch 2T (goal 0.5x)', 'infer img/s', 'input share', 'peak RSS MiB'],
      rows: rows.map((r) => [
        label(r),
        String(r.workers),
        String(r.size),
        String(r.batch),
        fmt(r.trainImagesPerSec),
        versusPytorch(r),
        fmt(r.inferImagesPerSec),
        percent(r.inputShare),
        fmt(r.peakRssMiB, 0),
      ]),
      notes: allNotes,
    },
  ];
}

if (isMainModule(import.meta.url)) {
  if (process.argv[2] === '--child') {
    const plan = JSON.parse(process.argv[3]!) as RowPlan;
    process.stdout.write(`${JSON.stringify(await measure(plan))}\n`);
  } else {
    const sizes = argValue('--sizes')?.split(',').filter((s) => s !== '').map(Number);
    const cpuSizes = argValue('--cpu-sizes')?.split(',').filter((s) => s !== '').map(Number);
    const steps = argValue('--steps');
    printTables(
      await run({
        quick: quickFromArgv(),
        ...(sizes ? { sizes } : {}),
        ...(cpuSizes ? { cpuSizes } : {}),
        ...(steps ? { steps: Number(steps) } : {}),
      }),
    );
  }
}

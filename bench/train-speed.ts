// U-Net training/inference speed as a flow user gets it, against PyTorch on the same network in the same run.
// flow's rows are configurations the train stage can run: its engine (LocalGradientEngine on 1 worker,
// DataParallelEngine on 2) + TrainOptimizer, the Carvana U-Net and settings as pipelines/carvana.yaml has them
// (filters 16, depth 3, no batch norm, batch 8, Adam, BCE + Dice, its augmentation), at 64, 128 and 256 px:
//   wasm with native convolutions on 2 workers (the default), the same on 1 worker, wasm with the XNNPACK-composed
//   kernels on 2 workers (FLOW_NATIVE_CONV=0), and the pure-JS cpu backend for one step at 64 px.
// PyTorch's rows run bench/unet_torch.py, the same network (its parameter count is checked against flow's
// model), loss, optimiser and batch, on as many threads as flow has workers, for every PyTorch build found
// (Debian's python3-torch; a newer CPU wheel in .bench-venv, see bench/setup-pytorch.sh). The default flow row
// and every PyTorch row are measured in alternating rounds (flow first, then PyTorch first), so a load change on
// a shared machine hits both sides; figures are the means of the rounds. The newest PyTorch is the anchor of
// the goals: training >= 0.8x, inference >= 1x, peak RSS at 256 px <= 1.25x PyTorch's.
// Each row runs in its own child process, so peak RSS (worker threads included) is that configuration's alone.
// Run: node --import tsx bench/train-speed.ts [--quick] [--sizes 64,128,256] [--cpu-sizes 64] [--steps N]
//      [--rounds N] [--pythons /path/to/python,...]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, type BackendInfo, type BackendName } from '../lib/tf/backend.js';
import { nativeConvStatus } from '../lib/tf/native-conv.js';
import { resolveWorkers } from '../lib/train/parallel.js';
import { ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON } from '../lib/train/optimizers.js';
import { DICE_SMOOTH, EPSILON } from '../lib/train/losses.js';
import { repoRoot } from '../test/helpers/paths.js';
import {
  argValue,
  augmentedBatches,
  carvanaTrainSettings,
  describeSettings,
  type CarvanaTrainSettings,
  startEngine,
  syntheticData,
  timeTrainingSteps,
  timeValidation,
  withBenchModel,
} from './train-parallel.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

/** wasm32 caps each heap at 4 GiB: a row whose batch does not fit is rerun with this batch (and says so). */
const FALLBACK_BATCH = 4;
/** The issue's goals against the anchor PyTorch on as many threads as flow's workers. */
const GOAL_TRAIN = 0.8;
const GOAL_INFER = 1;
const GOAL_RSS = 1.25;
const GOAL_RSS_SIZE = 256;
const TORCH_TWIN = path.join(repoRoot, 'bench', 'unet_torch.py');
/** The issue's goal for the input pipeline's share of the step time. */
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
  /** The model's parameter count (the PyTorch twin must have the same). */
  params: number;
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
        params: model.countParams(),
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

function percent(share: number): string {
  return `${(100 * share).toFixed(share < 0.01 ? 2 : 1)}%`;
}

// ---- PyTorch, measured in the same run ----

/** One PyTorch build: the interpreter that imports it and its version. */
interface TorchBuild {
  python: string;
  version: string;
}

export interface TorchMeasurement {
  torch: string;
  threads: number;
  params: number;
  trainImagesPerSec: number;
  inferImagesPerSec: number;
  peakRssMiB: number;
  finalLoss: number;
  /** 'cpu' or the CUDA device's name. */
  device?: string;
  peakGpuMiB?: number | null;
}

/** Where the twin runs: the CPU (default), or a CUDA GPU with TF32 on or off (bench/gpu-train.ts). */
export interface TorchDevice {
  device?: 'cpu' | 'cuda';
  tf32?: boolean;
}

/** Numeric parts of a version ("2.13.0+cpu" → [2, 13, 0]), for ordering builds. */
function versionParts(version: string): number[] {
  return (version.split(/[+a-z]/i)[0] ?? '').split('.').map((part) => Number.parseInt(part, 10) || 0);
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/**
 * The PyTorch builds on this machine, oldest first, one per version: the interpreters named by --pythons, then
 * .bench-venv's (bench/setup-pytorch.sh puts a newer CPU wheel there), python3 on PATH and Debian's /usr/bin/python3.
 */
function findTorchBuilds(extra: readonly string[], notes: string[]): TorchBuild[] {
  const candidates = [...extra, path.join(repoRoot, '.bench-venv', 'bin', 'python'), 'python3', '/usr/bin/python3'];
  const builds: TorchBuild[] = [];
  for (const python of [...new Set(candidates)]) {
    if (path.isAbsolute(python) && !fs.existsSync(python)) continue;
    const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
    const version = probe.status === 0 ? probe.stdout.trim().split('\n').at(-1) : undefined;
    if (version === undefined || version === '') {
      if (extra.includes(python)) notes.push(`--pythons ${python}: no torch there (${probe.error?.message ?? probe.stderr.trim().split('\n').at(-1) ?? 'exit ' + probe.status})`);
      continue;
    }
    if (!builds.some((build) => build.version === version)) builds.push({ python, version });
  }
  return builds.sort((a, b) => compareVersions(a.version, b.version));
}

/** One PyTorch row in a child python: the twin with flow's settings (no figure of flow's is passed, only settings). */
function runTorch(build: TorchBuild, settings: CarvanaTrainSettings, plan: RowPlan, threads: number): TorchMeasurement | string {
  return runTorchTwin(build.python, settings, plan, threads);
}

/** bench/unet_torch.py under `python` with flow's training settings for one size and batch. */
export function runTorchTwin(
  python: string,
  settings: CarvanaTrainSettings,
  plan: Pick<RowPlan, 'size' | 'batch' | 'warmup' | 'steps'>,
  threads: number,
  device: TorchDevice = {},
): TorchMeasurement | string {
  const twinSettings = {
    size: plan.size,
    batch: plan.batch,
    filters: settings.filters,
    depth: settings.depth,
    lr: settings.lr,
    loss: settings.loss,
    optimizer: settings.optimizer,
    momentum: settings.momentum,
    weightDecay: settings.weightDecay,
    beta1: ADAM_BETA1,
    beta2: ADAM_BETA2,
    adamEpsilon: ADAM_EPSILON,
    lossEpsilon: EPSILON,
    diceSmooth: DICE_SMOOTH,
    threads,
    warmup: Math.max(1, plan.warmup),
    steps: plan.steps,
    ...device,
  };
  if (settings.batchNorm) return 'the PyTorch twin has no batch norm, but the pipeline turns it on';
  const result = spawnSync(python, [TORCH_TWIN, JSON.stringify(twinSettings)], { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 20 * 60_000 });
  const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
  if (result.status !== 0 || line === undefined) {
    return `${result.stderr.trim().split('\n').at(-1) ?? ''} (exit ${result.status ?? result.signal})`;
  }
  return JSON.parse(line) as TorchMeasurement;
}

export interface TrainSpeedOptions extends BenchOptions {
  sizes?: number[];
  /** Sizes also measured on the pure-JS cpu backend (slow: one step each). */
  cpuSizes?: number[];
  /** Timed steps per wasm row (default: defaultSteps). */
  steps?: number;
  /** Alternating rounds of the default flow row and every PyTorch row (default 2; 1 with --quick). */
  rounds?: number;
  /** Python interpreters to look for PyTorch in, before the default places. */
  pythons?: string[];
}

/** The rows to measure once, per size: the backend auto picks (if not wasm), the non-default wasm rows; the cpu rows last. */
function planRows(options: TrainSpeedOptions, picked: BackendInfo, wasm: BackendInfo | null, nativeBuilt: boolean, batch: number) {
  const sizes = options.sizes ?? (options.quick ? [64] : [64, 128, 256]);
  // One cpu step takes minutes: --quick leaves it out unless asked for.
  const cpuSizes = options.cpuSizes ?? (options.quick ? [] : [64]);
  const workers = resolveWorkers('auto', 'wasm');
  const perSize = sizes.map((size) => {
    const { warmup, steps: defaultCount } = defaultSteps(size, options.quick);
    const steps = options.steps ?? defaultCount;
    const row = (backend: BackendName, kernels: Kernels, count: number): RowPlan => ({ backend, kernels, workers: count, size, batch, warmup, steps });
    const others: RowPlan[] = [];
    // A backend auto prefers to wasm (native TensorFlow) is what the user gets: measure it too.
    if (picked.name !== 'wasm' && picked.name !== 'cpu') others.push(row(picked.name, 'own', resolveWorkers('auto', picked.name)));
    const main = wasm === null ? null : row('wasm', nativeBuilt ? 'native' : 'xnnpack', workers);
    if (wasm !== null && nativeBuilt) {
      if (workers !== 1) others.push(row('wasm', 'native', 1));
      others.push(row('wasm', 'xnnpack', workers));
    }
    return { size, main, others };
  });
  const cpu = cpuSizes.map((size): RowPlan => ({ backend: 'cpu', kernels: 'own', workers: resolveWorkers('auto', 'cpu'), size, batch, warmup: 0, steps: 1 }));
  return { perSize, cpu };
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** A row measured over rounds: the means, the per-round train figures and the largest peak RSS. */
interface Averaged<T> {
  last: T;
  train: number[];
  infer: number[];
  peakRssMiB: number;
}

function average<T extends { trainImagesPerSec: number; inferImagesPerSec: number; peakRssMiB: number }>(runs: T[]): Averaged<T> | null {
  if (runs.length === 0) return null;
  return { last: runs.at(-1)!, train: runs.map((r) => r.trainImagesPerSec), infer: runs.map((r) => r.inferImagesPerSec), peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)) };
}

function rounds(values: number[]): string {
  return values.map((v) => fmt(v, 1)).join(' / ');
}

function ratioText(ratio: number, goal: number, atMost = false): string {
  const met = atMost ? ratio <= goal : ratio >= goal;
  return `${ratio.toFixed(2)}x ${met ? 'met' : 'not met'}`;
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
  const { perSize, cpu } = planRows(options, picked, wasm, nativeBuilt, settings.batch);
  const threads = resolveWorkers('auto', 'wasm');
  const torchBuilds = findTorchBuilds(options.pythons ?? [], notes);
  const roundCount = options.rounds ?? (options.quick ? 1 : 2);
  const loadBefore = machineLine();

  const flowRows: Measurement[] = [];
  const mainRuns = new Map<number, Measurement[]>();
  const torchRuns = new Map<string, TorchMeasurement[]>(); // by `${version} ${size}`
  const torchFailures = new Set<string>();
  const singleThreadTorch = new Map<number, TorchMeasurement>();
  for (const { size, main, others } of perSize) {
    for (const row of others) {
      const measured = measureRow(row, notes);
      if (measured !== null) flowRows.push(measured);
    }
    // One core each: the newest PyTorch on 1 thread beside flow's 1-worker row. On a loaded machine this pair is
    // the steadier comparison: a descheduled thread stalls every OpenMP barrier of a 2-thread PyTorch step.
    const newest = torchBuilds.at(-1);
    if (newest !== undefined && main !== null && threads > 1) {
      process.stderr.write(`  measuring PyTorch ${newest.version} 1 thread ${size}px ...\n`);
      const measured = runTorch(newest, settings, main, 1);
      if (typeof measured === 'string') notes.push(`did not run: PyTorch ${newest.version} 1 thread ${size}px: ${measured}`);
      else singleThreadTorch.set(size, measured);
    }
    for (let round = 0; round < roundCount; round++) {
      const measureFlow = () => {
        if (main === null) return;
        const measured = measureRow(main, notes);
        if (measured !== null) mainRuns.set(size, [...(mainRuns.get(size) ?? []), measured]);
      };
      const measureTorch = (build: TorchBuild) => {
        const key = `${build.version} ${size}`;
        if (torchFailures.has(key)) return;
        process.stderr.write(`  measuring PyTorch ${build.version} ${threads} threads ${size}px (round ${round + 1}) ...\n`);
        // The batch flow's main row ran with (it may have fallen back).
        const batch = mainRuns.get(size)?.at(-1)?.batch ?? settings.batch;
        const measured = runTorch(build, settings, { ...(main ?? perSize[0]!.main!), size, batch }, threads);
        if (typeof measured === 'string') {
          torchFailures.add(key);
          notes.push(`did not run: PyTorch ${build.version} ${size}px: ${measured}`);
        } else {
          torchRuns.set(key, [...(torchRuns.get(key) ?? []), measured]);
        }
      };
      // Alternate who goes first, so a load change on a shared machine hits both sides alike.
      if (round % 2 === 0) {
        measureFlow();
        torchBuilds.forEach(measureTorch);
      } else {
        [...torchBuilds].reverse().forEach(measureTorch);
        measureFlow();
      }
    }
  }
  for (const row of cpu) {
    const measured = measureRow(row, notes);
    if (measured !== null) flowRows.push(measured);
  }

  // Table 1: every configuration.
  const rows: string[][] = [];
  const mains = new Map<number, Averaged<Measurement>>();
  for (const { size } of perSize) {
    const averaged = average(mainRuns.get(size) ?? []);
    if (averaged === null) continue;
    mains.set(size, averaged);
    const r = averaged.last;
    rows.push([`flow ${label(r)}`, `${r.workers} workers`, String(size), String(r.batch), fmt(mean(averaged.train)), rounds(averaged.train), fmt(mean(averaged.infer)), percent(r.inputShare), fmt(averaged.peakRssMiB, 0)]);
    for (const build of torchBuilds) {
      const torch = average(torchRuns.get(`${build.version} ${size}`) ?? []);
      if (torch === null) continue;
      rows.push([`PyTorch ${build.version}`, `${torch.last.threads} threads`, String(size), String(r.batch), fmt(mean(torch.train)), rounds(torch.train), fmt(mean(torch.infer)), '-', fmt(torch.peakRssMiB, 0)]);
    }
    for (const other of flowRows.filter((f) => f.size === size && f.backend !== 'cpu')) {
      rows.push([`flow ${label(other)}`, `${other.workers} workers`, String(size), String(other.batch), fmt(other.trainImagesPerSec), fmt(other.trainImagesPerSec, 1), fmt(other.inferImagesPerSec), percent(other.inputShare), fmt(other.peakRssMiB, 0)]);
    }
    const single = singleThreadTorch.get(size);
    if (single !== undefined) rows.push([`PyTorch ${single.torch}`, '1 thread', String(size), String(r.batch), fmt(single.trainImagesPerSec), fmt(single.trainImagesPerSec, 1), fmt(single.inferImagesPerSec), '-', fmt(single.peakRssMiB, 0)]);
  }
  for (const other of flowRows.filter((f) => f.backend === 'cpu')) {
    rows.push([`flow ${label(other)}`, `${other.workers} workers`, String(other.size), String(other.batch), fmt(other.trainImagesPerSec), fmt(other.trainImagesPerSec, 1), fmt(other.inferImagesPerSec), percent(other.inputShare), fmt(other.peakRssMiB, 0)]);
  }

  // Table 2: flow's default configuration against each PyTorch build, per size; the newest build is the anchor.
  const anchor = torchBuilds.at(-1);
  const versus: string[][] = [];
  for (const [size, flow] of mains) {
    for (const build of [...torchBuilds].reverse()) {
      const torch = average(torchRuns.get(`${build.version} ${size}`) ?? []);
      if (torch === null) continue;
      if (torch.last.params !== flow.last.params) {
        notes.push(`PyTorch ${build.version} ${size}px: the twin has ${torch.last.params} parameters, flow's model ${flow.last.params}: ratios withheld`);
        continue;
      }
      const isAnchor = build === anchor;
      // The goals' reference is the anchor build's faster configuration on up to flow's thread count: on a
      // loaded machine 2-thread PyTorch can fall below its own 1-thread figure, and a user would run the faster.
      const single = isAnchor ? singleThreadTorch.get(size) : undefined;
      const singleFaster = single !== undefined && single.trainImagesPerSec > mean(torch.train);
      const torchTrain = singleFaster ? single.trainImagesPerSec : mean(torch.train);
      const torchInfer = Math.max(mean(torch.infer), single?.inferImagesPerSec ?? 0);
      const torchRss = singleFaster ? single.peakRssMiB : torch.peakRssMiB;
      const train = mean(flow.train) / torchTrain;
      const infer = mean(flow.infer) / torchInfer;
      const rss = flow.peakRssMiB / torchRss;
      versus.push([
        String(size),
        `${build.version}${isAnchor ? ` (anchor${singleFaster ? ': its 1-thread figure, faster in this run' : ''})` : ''}`,
        isAnchor ? ratioText(train, GOAL_TRAIN) : `${train.toFixed(2)}x`,
        isAnchor ? ratioText(infer, GOAL_INFER) : `${infer.toFixed(2)}x`,
        isAnchor && size === GOAL_RSS_SIZE ? ratioText(rss, GOAL_RSS, true) : `${rss.toFixed(2)}x`,
        `${fmt(flow.peakRssMiB, 0)} / ${fmt(torchRss, 0)}`,
      ]);
    }
    const single = singleThreadTorch.get(size);
    const oneWorker = flowRows.find((f) => f.size === size && f.backend === 'wasm' && f.kernels === flow.last.kernels && f.workers === 1);
    if (single !== undefined && oneWorker !== undefined && single.params === oneWorker.params) {
      versus.push([
        String(size),
        `${single.torch}, 1 thread vs flow 1 worker`,
        `${(oneWorker.trainImagesPerSec / single.trainImagesPerSec).toFixed(2)}x`,
        `${(oneWorker.inferImagesPerSec / single.inferImagesPerSec).toFixed(2)}x`,
        `${(oneWorker.peakRssMiB / single.peakRssMiB).toFixed(2)}x`,
        `${fmt(oneWorker.peakRssMiB, 0)} / ${fmt(single.peakRssMiB, 0)}`,
      ]);
    }
  }

  const kernelsByLabel = new Map([...flowRows, ...[...mains.values()].map((m) => m.last)].map((r) => [label(r), r.kernelsDetail]));
  const stepsBySize = perSize.filter((p) => p.main !== null).map((p) => `${p.size}px ${p.main!.warmup} warm-up + ${p.main!.steps} timed`);
  const params = [...mains.values()][0]?.last.params;
  const tables: BenchTable[] = [
    {
      title: 'U-Net training / inference speed: flow as the train stage runs it, and its PyTorch twin, in one run',
      columns: ['side', 'workers / threads', 'px', 'batch', 'train img/s', 'train img/s by round', 'infer img/s', 'input share', 'peak RSS MiB'],
      rows,
      notes: [
        `at the start: ${loadBefore}; at the end: ${machineLine()}`,
        `backend auto picks: ${picked.name} (${picked.package} ${picked.version}, ${picked.threads} thread(s) per backend); ${picked.reason}; kernels: ${picked.kernels}`,
        ...[...kernelsByLabel].map(([name, detail]) => `flow ${name} rows ran with: ${detail === picked.kernels ? 'the same kernels' : detail}`),
        ...(wasm !== null && !nativeBuilt ? [`native convolutions not in use, native rows skipped: ${native?.detail ?? 'unknown'}`] : []),
        `${describeSettings(settings)}${params !== undefined ? ` (${params.toLocaleString('en-US')} parameters)` : ''}; batch ${settings.batch}, augment ${JSON.stringify(settings.augment)} (flow only: the PyTorch twin trains on the same two fixed batches without augmentation); one child process per row (peak RSS: that process, threads included)`,
        `train img/s: flow: the train stage's step (gather + augmentBatch, engine.compute, TrainOptimizer.apply, Dice tally); PyTorch: zero_grad, forward, loss, backward, Adam step; ${stepsBySize.join(', ')}; flow's default row and PyTorch's rows: mean of ${roundCount} alternating round(s), flow first in odd rounds and last in even ones`,
        `infer img/s: 2 batches; flow: validation through the engine's evaluate (one batch per worker thread); PyTorch: eval() + inference_mode on ${threads} threads; both after one warm-up pass (none on cpu)`,
        `input share: gather + augmentBatch time / step time (goal < ${percent(GOAL_INPUT_SHARE)})`,
        ...(torchBuilds.length === 0 ? ['PyTorch not found (no python with torch among --pythons, .bench-venv, python3, /usr/bin/python3): run bench/setup-pytorch.sh; no ratios'] : [`PyTorch builds: ${torchBuilds.map((b) => `${b.version} (${b.python})`).join(', ')}`]),
        ...(cpu.length > 0 ? [] : ['pure-JS cpu row left out (--quick or an empty --cpu-sizes; a step takes minutes): add --cpu-sizes 64']),
        ...notes,
      ],
    },
  ];
  if (anchor !== undefined) {
    tables.push({
      title: `flow (${mains.values().next().value?.last.workers ?? threads} workers) / PyTorch (${threads} threads), same run, same network, loss, optimiser and batch`,
      columns: ['px', 'PyTorch', `train (goal >= ${GOAL_TRAIN}x)`, `infer (goal >= ${GOAL_INFER}x)`, `peak RSS (goal <= ${GOAL_RSS}x at ${GOAL_RSS_SIZE} px)`, 'RSS MiB flow / PyTorch'],
      rows: versus,
      notes: [
        `anchor: PyTorch ${anchor.version}, the newest build found, at the faster of its ${threads}-thread and 1-thread figures in this run (inference: the faster of the two); ratios are flow's figure over PyTorch's (RSS: lower is better)`,
        'on a loaded machine (see the load above) 2-thread PyTorch suffers far more than flow\'s independent workers (a descheduled thread stalls every OpenMP barrier); the 1-thread / 1-worker rows compare one core each and are the steadier read',
      ],
    });
  }
  return tables;
}

if (isMainModule(import.meta.url)) {
  if (process.argv[2] === '--child') {
    const plan = JSON.parse(process.argv[3]!) as RowPlan;
    process.stdout.write(`${JSON.stringify(await measure(plan))}\n`);
  } else {
    const list = (name: string) => argValue(name)?.split(',').filter((s) => s !== '');
    const sizes = list('--sizes')?.map(Number);
    const cpuSizes = list('--cpu-sizes')?.map(Number);
    const steps = argValue('--steps');
    const roundCount = argValue('--rounds');
    const pythons = list('--pythons');
    printTables(
      await run({
        quick: quickFromArgv(),
        ...(sizes ? { sizes } : {}),
        ...(cpuSizes ? { cpuSizes } : {}),
        ...(steps ? { steps: Number(steps) } : {}),
        ...(roundCount ? { rounds: Number(roundCount) } : {}),
        ...(pythons ? { pythons } : {}),
      }),
    );
  }
}

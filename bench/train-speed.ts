// U-Net training/inference speed bench, one table per run: the Carvana U-Net (filters 16, depth 3: encoder
// 16/32/64, bottleneck 128; batch 8; Adam; BCE + Dice) at 64, 128 and 256 px on the backend `auto` picks,
// beside the pure-JS cpu backend for a few steps, with PyTorch's CPU figures measured on this machine class
// as the reference (2 threads: 100 / 24 / 4.2 images/s; 1 thread: 66 / 16 / 3.0).
// Each (backend, size) runs in its own child process so peak RSS is that configuration's alone.
// Run: node --import tsx bench/train-speed.ts [--quick] [--sizes 64,128,256] [--cpu-sizes 64] [--steps N]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Scalar, Tensor } from '@tensorflow/tfjs-core';
import { initBackend, getTf, type BackendName, type BackendPreference } from '../lib/tf/backend.js';
import { buildUNet } from '../lib/tf/unet.js';
import { Rng } from '../lib/rng.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

const BATCH = 8;
/** wasm32 caps the heap at 4 GiB: a 256 px batch of 8 needs more during backprop, so it falls back to this. */
const FALLBACK_BATCH = 4;
const PYTORCH_2T: Record<number, number> = { 64: 100, 128: 24, 256: 4.2 };
const PYTORCH_1T: Record<number, number> = { 64: 66, 128: 16, 256: 3.0 };

interface Measurement {
  backend: string;
  batch: number;
  threads: number;
  size: number;
  trainSteps: number;
  trainImagesPerSec: number;
  inferImagesPerSec: number;
  peakRssMiB: number;
  finalLoss: number;
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Steps timed per size: enough for a steady figure, few enough that 256 px stays within minutes. */
function defaultSteps(backend: string, size: number): number {
  if (backend === 'cpu') return 1;
  return size <= 64 ? 8 : size <= 128 ? 4 : 2;
}

async function measure(preference: BackendPreference, size: number, steps: number, batch: number): Promise<Measurement> {
  const info = await initBackend(preference);
  const tf = getTf();
  const model = buildUNet({ inputShape: [size, size, 3], classes: 1, filters: 16, depth: 3, batchNorm: true, seed: 1 });
  const rng = new Rng(7);
  const count = batch * size * size;
  const x = tf.tensor4d(new Float32Array(count * 3).map(() => rng.next()), [batch, size, size, 3]);
  // A blob-like mask (half-plane per image) rather than noise, so Dice is meaningful.
  const mask = new Float32Array(count);
  for (let i = 0; i < count; i++) mask[i] = (i % (size * size)) % size < size / 2 ? 1 : 0;
  const y = tf.tensor4d(mask, [batch, size, size, 1]);
  const optimizer = tf.train.adam(1e-3);
  const lossFn = (): Scalar =>
    tf.tidy(() => {
      const p = tf.clipByValue(model.apply(x, { training: true }) as Tensor, 1e-7, 1 - 1e-7);
      const bce = tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p))))));
      const intersection = tf.sum(tf.mul(p, y));
      const dice = tf.sub(1, tf.div(tf.add(tf.mul(2, intersection), 1), tf.add(tf.add(tf.sum(p), tf.sum(y)), 1)));
      return tf.add(bce, dice) as Scalar;
    });
  const step = async (): Promise<number> => {
    const loss = optimizer.minimize(lossFn, true)!;
    const value = (await loss.data())[0]!;
    loss.dispose();
    return value;
  };
  // Warm-up (kernel setup, XNNPACK operator creation, heap growth); the pure-JS cpu backend has none worth
  // excluding and a step there takes minutes.
  if (info.name !== 'cpu') await step();
  let finalLoss = 0;
  const trainStart = performance.now();
  for (let i = 0; i < steps; i++) finalLoss = await step();
  const trainSeconds = (performance.now() - trainStart) / 1000;

  const predictOnce = async (): Promise<void> => {
    const out = model.predict(x) as Tensor;
    await out.data();
    out.dispose();
  };
  if (info.name !== 'cpu') await predictOnce();
  const inferRuns = Math.max(1, steps);
  const inferStart = performance.now();
  for (let i = 0; i < inferRuns; i++) await predictOnce();
  const inferSeconds = (performance.now() - inferStart) / 1000;
  return {
    backend: info.name,
    batch,
    threads: info.threads,
    size,
    trainSteps: steps,
    trainImagesPerSec: (steps * batch) / trainSeconds,
    inferImagesPerSec: (inferRuns * batch) / inferSeconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    finalLoss,
  };
}

function runChild(preference: BackendPreference, size: number, steps: number, batch: number): Measurement | string {
  const result = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--child', preference, String(size), String(steps), String(batch)],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  const line = result.stdout.split('\n').find((l) => l.startsWith('{'));
  if (result.status !== 0 || line === undefined) {
    const lastError = result.stderr.split('\n').find((l) => /^\w*Error:/.test(l.trim())) ?? `exit ${result.status}`;
    return lastError.trim();
  }
  return JSON.parse(line) as Measurement;
}

/** Batch 8, or the fallback batch when batch 8 does not fit (reported in the table). */
function measureSize(preference: BackendPreference, size: number, steps: number, failures: string[]): Measurement | null {
  const first = runChild(preference, size, steps, BATCH);
  if (typeof first !== 'string') return first;
  failures.push(`${preference} ${size}px batch ${BATCH}: ${first}`);
  const second = runChild(preference, size, steps, FALLBACK_BATCH);
  if (typeof second !== 'string') return second;
  failures.push(`${preference} ${size}px batch ${FALLBACK_BATCH}: ${second}`);
  return null;
}

function fmt(value: number, digits = 2): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

export interface TrainSpeedOptions extends BenchOptions {
  sizes?: number[];
  /** Sizes also measured on the pure-JS cpu backend (slow: a step or two each). */
  cpuSizes?: number[];
  /** Timed steps per size (default: defaultSteps). */
  steps?: number;
}

export async function run(options: TrainSpeedOptions): Promise<BenchTable[]> {
  const sizes = options.sizes ?? (options.quick ? [64] : [64, 128, 256]);
  const cpuSizes = options.cpuSizes ?? [64];
  const picked = await initBackend('auto');
  const rows: Measurement[] = [];
  const failures: string[] = [];
  const plan: [BackendName, number][] = sizes.map((size) => [picked.name, size]);
  if (picked.name !== 'cpu') for (const size of cpuSizes) plan.push(['cpu', size]);
  for (const [backend, size] of plan) {
    const steps = options.steps ?? (options.quick ? Math.min(2, defaultSteps(backend, size)) : defaultSteps(backend, size));
    const row = measureSize(backend, size, steps, failures);
    if (row !== null) rows.push(row);
    process.stderr.write(`  measured ${backend} ${size}px\n`);
  }
  const notes = [
    machineLine(),
    `backend picked: ${picked.name} (${picked.package} ${picked.version}, ${picked.threads} thread(s)); ${picked.reason}`,
    `U-Net filters 16 depth 3 (16/32/64, bottleneck 128), batch norm, batch ${BATCH}, Adam, BCE+Dice; images/s after one warm-up step (none on cpu); one child process per row (peak RSS is that row's alone)`,
    'baselines: PyTorch on this CPU class (measured separately: 2 threads 100 / 24 / 4.2, 1 thread 66 / 16 / 3.0 img/s at 64 / 128 / 256 px; goal >= 0.5x the 2-thread figure) and the pure-JS cpu backend in the same run',
  ];
  for (const failure of failures) notes.push(`did not run: ${failure}`);
  for (const size of sizes) {
    const fast = rows.find((r) => r.size === size && r.backend === picked.name);
    const cpu = rows.find((r) => r.size === size && r.backend === 'cpu');
    if (fast && cpu && picked.name !== 'cpu') {
      notes.push(`${size}px: ${picked.name} trains ${fmt(fast.trainImagesPerSec / cpu.trainImagesPerSec, 1)}x faster than pure-JS cpu (same run)`);
    }
  }
  return [
    {
      title: 'U-Net training / inference speed',
      columns: ['backend', 'px', 'batch', 'steps', 'train img/s', 'vs PyTorch 2T', 'vs PyTorch 1T', 'infer img/s', 'peak RSS MiB'],
      rows: rows.map((r) => [
        `${r.backend} (${r.threads}T)`,
        String(r.size),
        String(r.batch),
        String(r.trainSteps),
        fmt(r.trainImagesPerSec),
        PYTORCH_2T[r.size] ? `${fmt(r.trainImagesPerSec / PYTORCH_2T[r.size]!, 3)}x of ${PYTORCH_2T[r.size]}` : '-',
        PYTORCH_1T[r.size] ? `${fmt(r.trainImagesPerSec / PYTORCH_1T[r.size]!, 3)}x of ${PYTORCH_1T[r.size]}` : '-',
        fmt(r.inferImagesPerSec),
        fmt(r.peakRssMiB, 0),
      ]),
      notes,
    },
  ];
}

if (isMainModule(import.meta.url)) {
  if (process.argv[2] === '--child') {
    const [preference, size, steps, batch] = [process.argv[3] as BackendPreference, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6])];
    process.stdout.write(`${JSON.stringify(await measure(preference, size, steps, batch))}\n`);
  } else {
    const sizes = argValue('--sizes')?.split(',').map(Number);
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

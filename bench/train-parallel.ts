// Data-parallel training speed: images/s of the training step (forward, backward, Adam update) with 1 worker
// (the main thread alone) and 2 (main thread + 1 worker thread, gradients averaged), same model and data.
// The pipeline's model: Carvana U-Net (3 channels in, 1 sigmoid out, filters 16, depth 3 → 16/32/64, no batch
// norm), batch 8, Adam, BCE + Dice. Runs alternate 1/2/1/2 so load from other processes hits both alike.
// A second table: validation (inference) images/s on 1 and 2 threads.
// Run: node --import tsx bench/train-parallel.ts [--quick] [--sizes 64,96,128] [--steps N] [--backend wasm|cpu]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { initBackend, type BackendName } from '../lib/tf/backend.js';
import { buildUNet } from '../lib/tf/unet.js';
import { loadModelFromDir, saveModelToDir } from '../lib/tf/model-io.js';
import { LocalGradientEngine, trainableVariables, type BatchGeometry, type GradientEngine } from '../lib/train/gradients.js';
import { DataParallelEngine, resolveWorkers } from '../lib/train/parallel.js';
import { TrainOptimizer } from '../lib/train/optimizers.js';
import { evaluateDataset } from '../lib/train/loop.js';
import { Rng } from '../lib/rng.js';
import { isMainModule, machineLine, median, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

const BATCH = 8;
const WARMUP = 2;

export interface TrainParallelOptions extends BenchOptions {
  sizes?: number[];
  /** Timed steps per measurement (after WARMUP untimed ones). */
  steps?: number;
  /** Alternating 1-worker/2-worker rounds per size. */
  rounds?: number;
  backend?: BackendName;
}

/** The pipeline's U-Net at `size` px, saved to a temp folder (workers load it from there) and loaded back. */
async function withBenchModel<T>(size: number, use: (model: LayersModel, dir: string, geometry: BatchGeometry) => Promise<T>): Promise<T> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-bench-parallel-'));
  const dir = path.join(tmp, 'model');
  try {
    const built = buildUNet({ inputShape: [size, size, 3], classes: 1, filters: 16, depth: 3, batchNorm: false, seed: 1 });
    await saveModelToDir(built, dir);
    built.dispose();
    const model = await loadModelFromDir(dir);
    try {
      return await use(model, dir, { shape: [size, size, 3], classes: 1, loss: 'bce_dice' });
    } finally {
      model.dispose();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function measure(size: number, workers: number, steps: number, backend: BackendName): Promise<number> {
  return withBenchModel(size, async (model, dir, geometry) => {
    const engine: GradientEngine =
      workers > 1 ? await DataParallelEngine.start(model, dir, geometry, workers, backend) : new LocalGradientEngine(model, geometry);
    const optimizer = new TrainOptimizer({ kind: 'adam', momentum: 0, weightDecay: 0 }, trainableVariables(model));
    const rng = new Rng(3);
    const x = Float32Array.from({ length: BATCH * size * size * 3 }, () => rng.normal());
    const y = Uint8Array.from({ length: BATCH * size * size }, () => (rng.next() < 0.3 ? 1 : 0));
    let start = 0;
    for (let step = 0; step < WARMUP + steps; step++) {
      if (step === WARMUP) start = performance.now();
      const result = await engine.compute(x, y, BATCH);
      optimizer.apply(result.grads, 1e-3);
      tf.dispose(result.grads);
    }
    const seconds = (performance.now() - start) / 1000;
    await engine.dispose();
    optimizer.dispose();
    return (steps * BATCH) / seconds;
  });
}

const VAL_IMAGES = 20;

/** Validation (inference over VAL_IMAGES images in batches of BATCH) images/s on 1 and 2 threads, alternating. */
async function measureValidation(size: number, rounds: number, backend: BackendName): Promise<[number[], number[]]> {
  return withBenchModel(size, async (model, dir, geometry) => {
    const local = new LocalGradientEngine(model, geometry);
    const parallel = await DataParallelEngine.start(model, dir, geometry, 2, backend);
    const rng = new Rng(5);
    const data = {
      x: Float32Array.from({ length: VAL_IMAGES * size * size * 3 }, () => rng.normal()),
      y: Uint8Array.from({ length: VAL_IMAGES * size * size }, () => (rng.next() < 0.3 ? 1 : 0)),
      count: VAL_IMAGES,
    };
    const rate = async (engine: GradientEngine): Promise<number> => {
      const start = performance.now();
      await evaluateDataset(engine, data, geometry, BATCH);
      return VAL_IMAGES / ((performance.now() - start) / 1000);
    };
    await rate(local); // warm-up of both
    await rate(parallel);
    const one: number[] = [];
    const two: number[] = [];
    for (let round = 0; round < rounds; round++) {
      one.push(await rate(local));
      two.push(await rate(parallel));
    }
    await parallel.dispose();
    return [one, two];
  });
}

export async function run(options: TrainParallelOptions): Promise<BenchTable[]> {
  const sizes = options.sizes ?? (options.quick ? [64] : [64, 96, 128]);
  const steps = options.steps ?? (options.quick ? 2 : 4);
  const rounds = options.rounds ?? (options.quick ? 1 : 2);
  const info = await initBackend(options.backend ?? 'wasm');
  const rows: string[][] = [];
  const validationRows: string[][] = [];
  for (const size of sizes) {
    const one: number[] = [];
    const two: number[] = [];
    for (let round = 0; round < rounds; round++) {
      one.push(await measure(size, 1, steps, info.name));
      two.push(await measure(size, 2, steps, info.name));
    }
    const a = median(one);
    const b = median(two);
    rows.push([String(size), a.toFixed(1), b.toFixed(1), `${(b / a).toFixed(2)}x`, one.map((v) => v.toFixed(1)).join(' / '), two.map((v) => v.toFixed(1)).join(' / ')]);
    const [valOne, valTwo] = await measureValidation(size, rounds + 1, info.name);
    const c = median(valOne);
    const d = median(valTwo);
    validationRows.push([String(size), c.toFixed(1), d.toFixed(1), `${(d / c).toFixed(2)}x`]);
  }
  return [
    {
      title: `Data-parallel training, 1 vs 2 workers (${info.name} ${info.version})`,
      columns: ['px', '1 worker img/s', '2 workers img/s', 'speed-up', '1 worker rounds', '2 workers rounds'],
      rows,
      notes: [
        machineLine(),
        `U-Net filters 16 depth 3 (16/32/64, bottleneck 128), no batch norm, batch ${BATCH}, Adam, BCE+Dice; ${steps} timed steps after ${WARMUP} warm-up; medians of ${rounds} alternating round(s)`,
        `baseline: 1 worker (the main thread alone) in the same run; workers: auto picks ${resolveWorkers('auto', info.name)} here`,
      ],
    },
    {
      title: `Validation (inference) over ${VAL_IMAGES} images, 1 vs 2 threads (${info.name} ${info.version})`,
      columns: ['px', '1 thread img/s', '2 threads img/s', 'speed-up'],
      rows: validationRows,
      notes: [
        `whole batches of ${BATCH} dealt round-robin to the threads (lib/train/parallel.ts evaluate); metrics bit-identical to one thread`,
        `medians of ${rounds + 1} alternating round(s) after one warm-up each`,
      ],
    },
  ];
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (isMainModule(import.meta.url)) {
  const sizes = argValue('--sizes')?.split(',').map(Number);
  const steps = argValue('--steps');
  const backend = argValue('--backend') as BackendName | undefined;
  printTables(
    await run({
      quick: quickFromArgv(),
      ...(sizes ? { sizes } : {}),
      ...(steps ? { steps: Number(steps) } : {}),
      ...(backend ? { backend } : {}),
    }),
  );
}

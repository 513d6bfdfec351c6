// Data-parallel training speed: images/s of the training step (forward, backward, Adam update) with 1 worker
// (the main thread alone) and 2 (main thread + 1 worker thread, gradients averaged), same model and data.
// The pipeline's model and settings, read from pipelines/carvana.yaml: U-Net (3 channels in, 1 sigmoid out,
// filters 16, depth 3 → 16/32/64, no batch norm), batch 8, Adam, BCE + Dice. Runs alternate 1/2/1/2 so load
// from other processes hits both alike. A second table: validation (inference) images/s on 1 and 2 threads.
// The helpers exported here (model, engine, timed train-loop step, validation) are shared with train-speed.ts.
// Run: node --import tsx bench/train-parallel.ts [--quick] [--sizes 64,96,128] [--steps N] [--backend wasm|cpu]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import YAML from 'yaml';
import { initBackend, type BackendName } from '../lib/tf/backend.js';
import { buildUNet } from '../lib/tf/unet.js';
import { loadModelFromDir, saveModelToDir } from '../lib/tf/model-io.js';
import { LocalGradientEngine, trainableVariables, type BatchGeometry, type GradientEngine } from '../lib/train/gradients.js';
import { DataParallelEngine, resolveWorkers } from '../lib/train/parallel.js';
import { TrainOptimizer } from '../lib/train/optimizers.js';
import { DiceAccumulator } from '../lib/train/losses.js';
import { epochOrder, evaluateDataset, gatherBatch, type TrainData } from '../lib/train/loop.js';
import type { LossName, OptimizerName } from '../lib/train/hparams.js';
import { augmentBatch, validateAugmentConfig, type AugmentConfig } from '../lib/preprocess/augment.js';
import { Rng } from '../lib/rng.js';
import { repoRoot } from '../test/helpers/paths.js';
import { isMainModule, machineLine, median, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

const WARMUP = 2;

export interface TrainParallelOptions extends BenchOptions {
  sizes?: number[];
  /** Timed steps per measurement (after WARMUP untimed ones). */
  steps?: number;
  /** Alternating 1-worker/2-worker rounds per size. */
  rounds?: number;
  backend?: BackendName;
}

/** What the train stage of pipelines/carvana.yaml trains with (the benches read it so they follow the file). */
export interface CarvanaTrainSettings {
  batch: number;
  filters: number;
  depth: number;
  batchNorm: boolean;
  optimizer: OptimizerName;
  momentum: number;
  weightDecay: number;
  lr: number;
  loss: LossName;
  augment: AugmentConfig;
}

interface SchemaProperty {
  default?: unknown;
  properties?: Record<string, SchemaProperty>;
}

/** params.train of pipelines/carvana.yaml over the hparams schema's defaults, and its model stage's batch_norm (over model.build's). */
export function carvanaTrainSettings(): CarvanaTrainSettings {
  const pipelineFile = path.join(repoRoot, 'pipelines', 'carvana.yaml');
  const readSchema = (kind: string) =>
    JSON.parse(fs.readFileSync(path.join(repoRoot, 'schemas', 'stages', `${kind}.schema.json`), 'utf8')) as { properties: Record<string, SchemaProperty> };
  const pipeline = YAML.parse(fs.readFileSync(pipelineFile, 'utf8')) as {
    params?: { train?: Record<string, unknown> };
    stages?: { model?: { params?: Record<string, unknown> } };
  };
  const schema = readSchema('hparams');
  const modelSchema = readSchema('model.build');
  const train = pipeline.params?.train ?? {};
  const param = (name: string): unknown => train[name] ?? schema.properties[name]?.default;
  const typed = <T>(name: string, value: unknown, type: 'number' | 'string' | 'boolean'): T => {
    // A ${...} reference here would need the engine's interpolation; the benches take literal values only.
    if (typeof value !== type) throw new Error(`${pipelineFile}: ${name} must be a literal ${type} for the benches, got ${JSON.stringify(value)}`);
    return value as T;
  };
  const augmentDefaults = Object.fromEntries(
    Object.entries(schema.properties.augment?.properties ?? {}).map(([key, property]) => [key, property.default]),
  );
  const augment = { ...augmentDefaults, ...((train.augment as object | undefined) ?? {}) } as unknown as AugmentConfig;
  validateAugmentConfig(augment);
  return {
    batch: typed('params.train.batch_size', param('batch_size'), 'number'),
    filters: typed('params.train.filters', param('filters'), 'number'),
    depth: typed('params.train.depth', param('depth'), 'number'),
    batchNorm: typed('stages.model.params.batch_norm', pipeline.stages?.model?.params?.batch_norm ?? modelSchema.properties.batch_norm?.default, 'boolean'),
    optimizer: typed('params.train.optimizer', param('optimizer'), 'string'),
    momentum: typed('params.train.momentum', param('momentum'), 'number'),
    weightDecay: typed('params.train.weight_decay', param('weight_decay'), 'number'),
    lr: typed('params.train.lr', param('lr'), 'number'),
    loss: typed('params.train.loss', param('loss'), 'string'),
    augment,
  };
}

/** One line describing the model and training settings, for table notes. */
export function describeSettings(settings: CarvanaTrainSettings): string {
  const widths = Array.from({ length: settings.depth }, (_, level) => settings.filters * 2 ** level);
  return (
    `U-Net as pipelines/carvana.yaml builds it: filters ${settings.filters}, depth ${settings.depth} ` +
    `(${widths.join('/')}, bottleneck ${settings.filters * 2 ** settings.depth}), batch norm ${settings.batchNorm ? 'on' : 'off'}; ` +
    `${settings.optimizer}, ${settings.loss}`
  );
}

/** The pipeline's U-Net at `size` px, saved to a temp folder (workers load it from there) and loaded back. */
export async function withBenchModel<T>(
  size: number,
  settings: CarvanaTrainSettings,
  use: (model: LayersModel, dir: string, geometry: BatchGeometry) => Promise<T>,
): Promise<T> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-bench-parallel-'));
  const dir = path.join(tmp, 'model');
  try {
    const built = buildUNet({ inputShape: [size, size, 3], classes: 1, filters: settings.filters, depth: settings.depth, batchNorm: settings.batchNorm, seed: 1 });
    await saveModelToDir(built, dir);
    built.dispose();
    const model = await loadModelFromDir(dir);
    try {
      return await use(model, dir, { shape: [size, size, 3], classes: 1, loss: settings.loss });
    } finally {
      model.dispose();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The train stage's engine: the main thread alone (1 worker) or data-parallel over `workers` threads. */
export async function startEngine(model: LayersModel, dir: string, geometry: BatchGeometry, workers: number, backend: BackendName): Promise<GradientEngine> {
  return workers > 1 ? DataParallelEngine.start(model, dir, geometry, workers, backend) : new LocalGradientEngine(model, geometry);
}

/** `count` random images of `size` px (normal values) with sparse random binary masks. */
export function syntheticData(count: number, size: number, seed: number): TrainData {
  const rng = new Rng(seed);
  return {
    x: Float32Array.from({ length: count * size * size * 3 }, () => rng.normal()),
    y: Uint8Array.from({ length: count * size * size }, () => (rng.next() < 0.3 ? 1 : 0)),
    count,
  };
}

/** One batch of `data` in the order of `indices`, copied out (what the train loop hands to augmentation). */
/**
 * The train loop's input pipeline over `data`: each epoch a seeded shuffle (epochOrder), then per step the
 * batch's items gathered and augmented in place with `settings.augment` (augmentBatch), as trainLoop does.
 */
export function augmentedBatches(data: TrainData, shape: readonly number[], settings: CarvanaTrainSettings, seed: number): () => { x: Float32Array; y: Uint8Array; count: number } {
  const rng = new Rng(seed);
  const stepsPerEpoch = Math.floor(data.count / settings.batch);
  if (stepsPerEpoch < 1) throw new Error(`augmentedBatches: ${data.count} items make no batch of ${settings.batch}`);
  let epoch = 0;
  let step = 0;
  let order = epochOrder(seed, epoch, data.count);
  return () => {
    if (step === stepsPerEpoch) {
      epoch += 1;
      step = 0;
      order = epochOrder(seed, epoch, data.count);
    }
    const batch = gatherBatch(data, order.slice(step * settings.batch, (step + 1) * settings.batch), shape);
    step += 1;
    augmentBatch(batch.x, batch.y, batch.count, shape, settings.augment, rng);
    return batch;
  };
}

export interface TrainTiming {
  /** Images per second over the timed steps (input pipeline included, as the train stage counts them). */
  imagesPerSec: number;
  /** Seconds per timed step, each. */
  stepSeconds: number[];
  /** Of the timed steps' total, the share spent producing batches (nextBatch). */
  inputShare: number;
  finalLoss: number;
}

/**
 * The train loop's step, timed: produce a batch (`nextBatch`: gather + augment in the train stage), compute
 * gradients on the engine, apply the optimizer, tally the training Dice. `warmup` untimed steps first.
 */
export async function timeTrainingSteps(
  engine: GradientEngine,
  model: LayersModel,
  settings: CarvanaTrainSettings,
  nextBatch: () => { x: Float32Array; y: Uint8Array; count: number },
  warmup: number,
  steps: number,
): Promise<TrainTiming> {
  const optimizer = new TrainOptimizer({ kind: settings.optimizer, momentum: settings.momentum, weightDecay: settings.weightDecay }, trainableVariables(model));
  const stepSeconds: number[] = [];
  let inputSeconds = 0;
  let images = 0;
  let finalLoss = NaN;
  try {
    for (let step = 0; step < warmup + steps; step++) {
      const start = performance.now();
      const batch = nextBatch();
      const input = performance.now() - start;
      const result = await engine.compute(batch.x, batch.y, batch.count);
      optimizer.apply(result.grads, settings.lr);
      tf.dispose(result.grads);
      // The train loop's per-step training Dice (binary: the Carvana U-Net has one sigmoid output).
      new DiceAccumulator(1).add(result.probabilities, batch.y, batch.count);
      finalLoss = result.loss;
      if (step >= warmup) {
        stepSeconds.push((performance.now() - start) / 1000);
        inputSeconds += input / 1000;
        images += batch.count;
      }
    }
  } finally {
    optimizer.dispose();
  }
  const total = stepSeconds.reduce((a, b) => a + b, 0);
  return { imagesPerSec: images / total, stepSeconds, inputShare: inputSeconds / total, finalLoss };
}
/** Validation (the train stage's per-epoch inference) over `data` in batches of `batch`: images/s. */
export async function timeValidation(engine: GradientEngine, geometry: BatchGeometry, data: TrainData, batch: number): Promise<number> {
  const start = performance.now();
  await evaluateDataset(engine, data, geometry, batch);
  return data.count / ((performance.now() - start) / 1000);
}

/** Training images/s on `workers` threads: fixed data, no augmentation (the engine's speed alone). */
async function measure(size: number, workers: number, steps: number, backend: BackendName, settings: CarvanaTrainSettings): Promise<number> {
  return withBenchModel(size, settings, async (model, dir, geometry) => {
    const engine = await startEngine(model, dir, geometry, workers, backend);
    try {
      const data = syntheticData(settings.batch, size, 3);
      const timing = await timeTrainingSteps(engine, model, settings, () => data, WARMUP, steps);
      return timing.imagesPerSec;
    } finally {
      await engine.dispose();
    }
  });
}

const VAL_IMAGES = 20;

/** Validation (inference over VAL_IMAGES images in batches) images/s on 1 and 2 threads, alternating. */
async function measureValidation(size: number, rounds: number, backend: BackendName, settings: CarvanaTrainSettings): Promise<[number[], number[]]> {
  return withBenchModel(size, settings, async (model, dir, geometry) => {
    const local = new LocalGradientEngine(model, geometry);
    const parallel = await DataParallelEngine.start(model, dir, geometry, 2, backend);
    try {
      const data = syntheticData(VAL_IMAGES, size, 5);
      await timeValidation(local, geometry, data, settings.batch); // warm-up of both
      await timeValidation(parallel, geometry, data, settings.batch);
      const one: number[] = [];
      const two: number[] = [];
      for (let round = 0; round < rounds; round++) {
        one.push(await timeValidation(local, geometry, data, settings.batch));
        two.push(await timeValidation(parallel, geometry, data, settings.batch));
      }
      return [one, two];
    } finally {
      await parallel.dispose();
    }
  });
}

export async function run(options: TrainParallelOptions): Promise<BenchTable[]> {
  const sizes = options.sizes ?? (options.quick ? [64] : [64, 96, 128]);
  const steps = options.steps ?? (options.quick ? 2 : 4);
  const rounds = options.rounds ?? (options.quick ? 1 : 2);
  const info = await initBackend(options.backend ?? 'wasm');
  const settings = carvanaTrainSettings();
  const rows: string[][] = [];
  const validationRows: string[][] = [];
  for (const size of sizes) {
    const one: number[] = [];
    const two: number[] = [];
    for (let round = 0; round < rounds; round++) {
      one.push(await measure(size, 1, steps, info.name, settings));
      two.push(await measure(size, 2, steps, info.name, settings));
    }
    const a = median(one);
    const b = median(two);
    rows.push([String(size), a.toFixed(1), b.toFixed(1), `${(b / a).toFixed(2)}x`, one.map((v) => v.toFixed(1)).join(' / '), two.map((v) => v.toFixed(1)).join(' / ')]);
    const [valOne, valTwo] = await measureValidation(size, rounds + 1, info.name, settings);
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
        `${describeSettings(settings)}, batch ${settings.batch}; fixed data, no augmentation; ${steps} timed steps after ${WARMUP} warm-up; medians of ${rounds} alternating round(s)`,
        `baseline: 1 worker (the main thread alone) in the same run; workers: auto picks ${resolveWorkers('auto', info.name)} here`,
      ],
    },
    {
      title: `Validation (inference) over ${VAL_IMAGES} images, 1 vs 2 threads (${info.name} ${info.version})`,
      columns: ['px', '1 thread img/s', '2 threads img/s', 'speed-up'],
      rows: validationRows,
      notes: [
        `whole batches of ${settings.batch} dealt round-robin to the threads (lib/train/parallel.ts evaluate); metrics bit-identical to one thread`,
        `medians of ${rounds + 1} alternating round(s) after one warm-up each`,
      ],
    },
  ];
}

/** The value after `name` on the command line. */
export function argValue(name: string): string | undefined {
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

// The training loop: epochs of shuffled, augmented batches, an explicit optimizer, a learning-rate schedule,
// validation, best-weights tracking, early stopping, and checkpoints from which a resumed run continues to
// exactly the weights an uninterrupted run reaches (same seed, backend and worker count).
//
// Why resume is exact: everything random is derived from the seed and checkpointed state. The data order of
// epoch e is a shuffle by an Rng seeded from (seed, e) and is also stored in the checkpoint; augmentation draws
// from one Rng whose four-word state is stored after every step; the optimizer's slots and iteration count,
// the schedule, best-metric and early-stopping state, every model weight (batch-norm statistics included) and
// the running sums of the epoch's metrics are stored as exact float bits / JSON doubles.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { Rng, seedFromString, type RngState } from '../rng.js';
import type { AugmentSettings, Hparams } from './hparams.js';
import { resolveMode } from './hparams.js';
import { DiceAccumulator, checkLossFitsClasses } from './losses.js';
import { TrainOptimizer, type OptimizerState } from './optimizers.js';
import { LrSchedule, type ScheduleState } from './schedules.js';
import {
  checkSignature,
  loadLatestCheckpoint,
  writeCheckpoint,
  type Checkpoint,
  type NamedArray,
  type TensorSignature,
} from './checkpoint.js';
import {
  LocalGradientEngine,
  itemSizes,
  readAllWeights,
  trainableVariables,
  weightSignature,
  writeAllWeights,
  type BatchGeometry,
  type EvalBatch,
  type GradientEngine,
} from './gradients.js';
import type { ProgressReporter } from './progress.js';
import { inMemoryValidation, type TrainData, type ValidationSource } from './validation.js';
import { BatchPrefetcher, type BatchSource } from '../tensors/random-access.js';

export type { TrainData } from './validation.js';

export type AugmentFn = (
  x: Float32Array,
  y: Uint8Array,
  count: number,
  shape: readonly number[],
  config: AugmentSettings,
  rng: Rng,
) => void;

export type MetricsLine =
  | { type: 'step'; epoch: number; step: number; loss: number; lr: number; images_per_s: number }
  | ({ type: 'epoch'; epoch: number; loss: number; lr: number; seconds: number } & Record<string, number | string>);

export interface TrainOptions {
  model: LayersModel;
  /** Training items: arrays in memory, or a source that reads them from disk (the train stage's). */
  train: TrainData | BatchSource;
  /** Validation items: arrays in memory, or a source that streams them (the train stage's). */
  val: TrainData | ValidationSource;
  /** One input item: [H, W, C] (2D) or [D, H, W, C] (3D). */
  shape: number[];
  classes: number;
  hparams: Hparams;
  checkpointDir: string;
  signal: AbortSignal;
  print: (line: string) => void;
  progress?: ProgressReporter;
  /** Training-time augmentation (lib/preprocess/augment.ts's augmentBatch); none when absent. */
  augment?: AugmentFn;
  /** Computes gradients; default: on this thread. parallel.ts provides the data-parallel one. */
  engine?: GradientEngine;
  /** Recorded in checkpoints: resuming with another worker count would not be exact, so it is refused. */
  workers?: number;
  /** Called after every step (tests abort the signal here to interrupt at a known step). */
  onStep?: (globalStep: number) => void;
  /** Label value of ignored pixels (the dataset's `ignore` values): left out of the loss and the Dice. */
  ignoreIndex?: number;
}

export interface TrainSummary {
  epochs_planned: number;
  epochs_run: number;
  steps: number;
  best_metric: string;
  best_epoch: number | null;
  best_value: number | null;
  stopped_early: boolean;
  interrupted_count: number;
  resumed_count: number;
  images_per_s: number;
  train_seconds: number;
  /** Share of train_seconds spent gathering and augmenting batches (the input pipeline) rather than computing. */
  input_share: number;
  total_seconds: number;
  workers: number;
  final_loss: number | null;
}

export interface TrainResult {
  status: 'done' | 'interrupted';
  metrics: MetricsLine[];
  summary: TrainSummary;
  /** The weights to publish: the best epoch's on best_metric, else the last. Only set when done. */
  bestWeights: NamedArray[] | null;
}

/** Everything besides tensors that a checkpoint holds. */
interface LoopState {
  /** 0-based epoch in progress (equal to `epochs` when training finished). */
  epoch: number;
  /** Steps of `epoch` already done. */
  stepInEpoch: number;
  globalStep: number;
  /** The data order of `epoch` (sample indices). */
  order: number[];
  augmentRng: RngState;
  schedule: ScheduleState;
  optimizer: { kind: OptimizerState['kind']; iteration: number };
  best: { value: number | null; epoch: number | null };
  earlyStopping: { best: number | null; bad: number; stopped: boolean };
  /** Running sums of the epoch in progress. */
  epochSums: { loss: number; images: number; diceSum: number[]; diceImages: number; seconds: number };
  metrics: MetricsLine[];
  counters: {
    interrupted: number;
    resumed: number;
    trainSeconds: number;
    imagesSeen: number;
    totalSeconds: number;
    /** Of trainSeconds, the time spent assembling and augmenting batches (absent in checkpoints before it). */
    inputSeconds?: number;
  };
  workers: number;
  /** Fingerprint of the hyper-parameters that shape the arithmetic; a checkpoint from others is refused. */
  hparamsKey: string;
  /**
   * The TensorFlow.js backend the checkpoint was computed on (absent in checkpoints before it). Another backend
   * may resume it, with a warning: the weights carry over exactly, but the arithmetic from there on differs.
   */
  backend?: string;
}

/** The data order of one epoch: a deterministic shuffle from the seed and the epoch number. */
export function epochOrder(seed: number, epoch: number, count: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  return new Rng(seedFromString(`data-order/${epoch}`, seed)).shuffle(order);
}

/** The items `indices` of a sample-major dataset, copied into one batch (the train loop's input pipeline). */
export function gatherBatch(data: TrainData, indices: readonly number[], shape: readonly number[]): { x: Float32Array; y: Uint8Array; count: number } {
  const { xSize, ySize } = itemSizes(shape);
  const x = new Float32Array(indices.length * xSize);
  const y = new Uint8Array(indices.length * ySize);
  indices.forEach((index, i) => {
    x.set(data.x.subarray(index * xSize, (index + 1) * xSize), i * xSize);
    y.set(data.y.subarray(index * ySize, (index + 1) * ySize), i * ySize);
  });
  return { x, y, count: indices.length };
}

/** Arrays in memory as a batch source (the same items a dataset on disk gives). */
export function inMemorySource(data: TrainData, shape: readonly number[]): BatchSource {
  return { count: data.count, read: async (indices) => gatherBatch(data, indices, shape) };
}

function hparamsKey(h: Hparams): string {
  // What changes the arithmetic of a resumed run. (The engine's cache key already separates other params.)
  return JSON.stringify([h.batch_size, h.epochs, h.optimizer, h.lr, h.momentum, h.weight_decay, h.schedule, h.loss, h.augment, h.seed]);
}

/** Batches handed to the engine at once: enough for every worker thread, few enough to bound memory. */
const EVAL_WINDOW = 4;

/**
 * Validation loss and hard Dice over a dataset in batches of `batchSize` (inference mode). The engine may spread
 * whole batches over its threads; each batch is computed and summed in order exactly as on one thread.
 */
export async function evaluateDataset(
  engine: GradientEngine,
  data: TrainData | ValidationSource,
  geometry: BatchGeometry,
  batchSize: number,
): Promise<{ loss: number; dice: DiceAccumulator }> {
  const source = 'batches' in data ? data : inMemoryValidation(data, geometry.shape);
  const dice = new DiceAccumulator(geometry.classes, geometry.ignoreIndex);
  let lossSum = 0;
  let items = 0;
  const evaluateWindow = async (window: EvalBatch[]): Promise<void> => {
    const results = await engine.evaluate(window);
    results.forEach((result, i) => {
      const batch = window[i]!;
      lossSum += result.loss * batch.count;
      dice.add(result.probabilities, batch.y, batch.count);
      items += batch.count;
    });
  };
  let window: EvalBatch[] = [];
  for await (const batch of source.batches(batchSize)) {
    window.push(batch);
    if (window.length === EVAL_WINDOW) {
      await evaluateWindow(window);
      window = [];
    }
  }
  if (window.length > 0) await evaluateWindow(window);
  if (items !== source.count) throw new Error(`validation produced ${items} items, expected ${source.count}`);
  return { loss: items > 0 ? lossSum / items : NaN, dice };
}

function isBetter(value: number, best: number | null, mode: 'min' | 'max', minDelta = 0): boolean {
  if (best === null) return true;
  return mode === 'min' ? value < best - minDelta : value > best + minDelta;
}

export async function trainLoop(options: TrainOptions): Promise<TrainResult> {
  const { model, train, val, shape, classes, hparams, print } = options;
  checkLossFitsClasses(hparams.loss, classes);
  const sessionStart = performance.now();
  if (train.count === 0) throw new Error('the training set is empty: nothing to train on');
  const geometry: BatchGeometry = { shape, classes, loss: hparams.loss, ...(options.ignoreIndex !== undefined ? { ignoreIndex: options.ignoreIndex } : {}) };
  const batchSize = hparams.batch_size;
  const stepsPerEpoch = Math.ceil(train.count / batchSize);
  const totalSteps = stepsPerEpoch * hparams.epochs;
  const workers = options.workers ?? 1;
  const bestMode = resolveMode(hparams.best_metric, hparams.best_mode);

  const trainables = trainableVariables(model);
  if (trainables.length === 0) throw new Error('the model has no trainable weights (all layers frozen?)');
  const optimizer = new TrainOptimizer(
    { kind: hparams.optimizer, momentum: hparams.momentum, weightDecay: hparams.weight_decay },
    trainables,
  );
  const schedule = new LrSchedule(hparams.schedule, hparams.lr, hparams.epochs, stepsPerEpoch);
  const signature: TensorSignature[] = weightSignature(model);
  const engine = options.engine ?? new LocalGradientEngine(model, geometry);

  let state: LoopState = {
    epoch: 0,
    stepInEpoch: 0,
    globalStep: 0,
    order: epochOrder(hparams.seed, 0, train.count),
    augmentRng: new Rng(seedFromString('augment', hparams.seed)).getState(),
    schedule: schedule.getState(),
    optimizer: { kind: hparams.optimizer, iteration: 0 },
    best: { value: null, epoch: null },
    earlyStopping: { best: null, bad: 0, stopped: false },
    epochSums: { loss: 0, images: 0, diceSum: [], diceImages: 0, seconds: 0 },
    metrics: [],
    counters: { interrupted: 0, resumed: 0, trainSeconds: 0, imagesSeen: 0, totalSeconds: 0, inputSeconds: 0 },
    workers,
    hparamsKey: hparamsKey(hparams),
    backend: tf.getBackend(),
  };
  let bestWeights: NamedArray[] | null = null;
  let lastCheckpoint: string | null = null;

  // Resume from the newest complete checkpoint that fits this model and these hyper-parameters.
  const resumed = await loadLatestCheckpoint<LoopState>(
    options.checkpointDir,
    (checkpoint: Checkpoint<LoopState>) => {
      const s = checkpoint.state;
      checkSignature(checkpoint.groups.weights ?? [], signature, `${checkpoint.dir}/weights.bin`);
      if (s.hparamsKey !== state.hparamsKey) throw new Error('written with other hyper-parameters');
      if (s.workers !== workers) {
        throw new Error(`written with workers: ${s.workers}, this run uses ${workers}: resume with workers: ${s.workers}`);
      }
      if (s.order.length !== train.count) throw new Error(`written for ${s.order.length} training samples, there are ${train.count}`);
      if (checkpoint.groups.best) checkSignature(checkpoint.groups.best, signature, `${checkpoint.dir}/best.bin`);
      // Throws on a mismatch of optimizer kind, slot names or shapes; the fresh slots are overwritten anyway.
      optimizer.setState({ kind: s.optimizer.kind, iteration: s.optimizer.iteration, slots: checkpoint.groups.optimizer ?? [] });
    },
    print,
  );
  if (resumed) {
    const backend = tf.getBackend();
    if (resumed.state.backend !== undefined && resumed.state.backend !== backend) {
      print(
        `warning: checkpoint ${resumed.dir} was computed on the ${resumed.state.backend} backend and this run computes on ` +
          `${backend}: training continues from its weights and optimizer state, but the final weights will not be ` +
          `bit-identical to an uninterrupted run on either backend`,
      );
    }
    state = { ...resumed.state, backend };
    state.counters.resumed += 1;
    writeAllWeights(model, resumed.groups.weights!);
    schedule.setState(state.schedule);
    bestWeights = resumed.groups.best ?? null;
    lastCheckpoint = resumed.dir;
    print(
      `resuming from checkpoint ${resumed.dir}: epoch ${state.epoch + 1}/${hparams.epochs}, ` +
        `step ${state.stepInEpoch}/${stepsPerEpoch} of the epoch (global step ${state.globalStep})`,
    );
  }

  const augmentRng = Rng.fromState(state.augmentRng);

  const saveCheckpoint = async (): Promise<void> => {
    state.augmentRng = augmentRng.getState();
    state.schedule = schedule.getState();
    const optimizerState = await optimizer.getState();
    state.optimizer = { kind: optimizerState.kind, iteration: optimizerState.iteration };
    state.counters.totalSeconds += (performance.now() - sessionStart) / 1000 - sessionSecondsCounted;
    sessionSecondsCounted = (performance.now() - sessionStart) / 1000;
    const groups: Record<string, NamedArray[]> = {
      weights: await readAllWeights(model),
      optimizer: optimizerState.slots,
    };
    if (bestWeights) groups.best = bestWeights;
    lastCheckpoint = await writeCheckpoint(options.checkpointDir, state, groups);
  };
  let sessionSecondsCounted = 0;

  const summary = (): TrainSummary => {
    const lastEpoch = [...state.metrics].reverse().find((line) => line.type === 'epoch');
    return {
      epochs_planned: hparams.epochs,
      epochs_run: state.metrics.filter((line) => line.type === 'epoch').length,
      steps: state.globalStep,
      best_metric: hparams.best_metric,
      best_epoch: state.best.epoch,
      best_value: state.best.value,
      stopped_early: state.earlyStopping.stopped,
      interrupted_count: state.counters.interrupted,
      resumed_count: state.counters.resumed,
      images_per_s: state.counters.trainSeconds > 0 ? state.counters.imagesSeen / state.counters.trainSeconds : 0,
      train_seconds: state.counters.trainSeconds,
      input_share: state.counters.trainSeconds > 0 ? (state.counters.inputSeconds ?? 0) / state.counters.trainSeconds : 0,
      total_seconds: state.counters.totalSeconds,
      workers,
      final_loss: lastEpoch ? lastEpoch.loss : null,
    };
  };

  const source: BatchSource = 'read' in train ? train : inMemorySource(train, shape);
  let prefetcher: BatchPrefetcher | null = null;
  try {
    while (state.epoch < hparams.epochs && !state.earlyStopping.stopped) {
      const epochNumber = state.epoch + 1;
      // Batches are read ahead within the epoch, from the order fixed (and checkpointed) at its start.
      const order = state.order;
      prefetcher = new BatchPrefetcher(source, (step) => (step < stepsPerEpoch ? order.slice(step * batchSize, (step + 1) * batchSize) : null));
      while (state.stepInEpoch < stepsPerEpoch) {
        if (options.signal.aborted) {
          state.counters.interrupted += 1;
          await saveCheckpoint();
          print(`interrupted at global step ${state.globalStep}: checkpoint ${lastCheckpoint}`);
          options.progress?.stop();
          return { status: 'interrupted', metrics: state.metrics, summary: summary(), bestWeights: null };
        }
        const stepStart = performance.now();
        const lr = schedule.lrAt(state.epoch, state.stepInEpoch);
        const indices = state.order.slice(state.stepInEpoch * batchSize, (state.stepInEpoch + 1) * batchSize);
        const batch = await prefetcher.take(state.stepInEpoch);
        options.augment?.(batch.x, batch.y, indices.length, shape, hparams.augment, augmentRng);
        state.counters.inputSeconds = (state.counters.inputSeconds ?? 0) + (performance.now() - stepStart) / 1000;
        const result = await engine.compute(batch.x, batch.y, indices.length);
        const stepNumber = state.globalStep + 1;
        if (!Number.isFinite(result.loss)) {
          tf.dispose(result.grads);
          throw new Error(
            `loss is ${result.loss} at global step ${stepNumber} (epoch ${epochNumber}, step ${state.stepInEpoch + 1} of the epoch, lr ${lr}); ` +
              `training stopped. Last good checkpoint: ${lastCheckpoint ?? 'none (no checkpoint written yet)'}. ` +
              'Lower lr, check the inputs for NaN/Inf, or use another loss.',
          );
        }
        optimizer.apply(result.grads, lr);
        tf.dispose(result.grads);
        const trainDice = new DiceAccumulator(classes, geometry.ignoreIndex);
        trainDice.add(result.probabilities, batch.y, indices.length);
        const sums = state.epochSums;
        sums.loss += result.loss * indices.length;
        sums.images += indices.length;
        const perClass = trainDice.perClass();
        sums.diceSum = perClass.map((value, k) => (sums.diceSum[k] ?? 0) + value * indices.length);
        sums.diceImages += indices.length;
        const seconds = (performance.now() - stepStart) / 1000;
        sums.seconds += seconds;
        state.counters.trainSeconds += seconds;
        state.counters.imagesSeen += indices.length;
        state.stepInEpoch += 1;
        state.globalStep = stepNumber;
        const imagesPerSecond = indices.length / Math.max(seconds, 1e-9);
        state.metrics.push({ type: 'step', epoch: epochNumber, step: stepNumber, loss: result.loss, lr, images_per_s: imagesPerSecond });
        options.progress?.step({
          epoch: epochNumber,
          epochs: hparams.epochs,
          globalStep: stepNumber,
          totalSteps,
          loss: result.loss,
          imagesPerSecond,
        });
        options.onStep?.(stepNumber);
        const every = hparams.checkpoint_every_steps;
        if (every > 0 && stepNumber % every === 0 && state.stepInEpoch < stepsPerEpoch) await saveCheckpoint();
      }

      // Epoch end: validate, track the best weights, adjust the schedule, maybe stop early.
      const sums = state.epochSums;
      const line: Record<string, number | string> = {
        type: 'epoch',
        epoch: epochNumber,
        loss: sums.loss / sums.images,
        dice: sums.diceSum.reduce((a, b) => a + b, 0) / sums.diceSum.length / sums.diceImages,
        lr: schedule.lrAt(state.epoch, stepsPerEpoch - 1),
      };
      if (classes > 1) sums.diceSum.forEach((sum, k) => (line[`dice_${k + 1}`] = sum / sums.diceImages));
      const validate = val.count > 0 && (epochNumber % hparams.val_every === 0 || epochNumber === hparams.epochs);
      const validationStart = performance.now();
      if (validate) {
        const result = await evaluateDataset(engine, val, geometry, batchSize);
        line.val_loss = result.loss;
        line.val_dice = result.dice.mean();
        if (classes > 1) result.dice.perClass().forEach((value, k) => (line[`val_dice_${k + 1}`] = value));
      }
      line.seconds = sums.seconds + (performance.now() - validationStart) / 1000;
      const numeric = Object.fromEntries(Object.entries(line).filter((entry): entry is [string, number] => typeof entry[1] === 'number'));
      if (validate || val.count === 0) {
        const value = numeric[hparams.best_metric];
        if (value === undefined && val.count > 0) {
          throw new Error(`best_metric ${hparams.best_metric} is not an epoch metric; available: ${Object.keys(numeric).join(', ')}`);
        }
        if (value !== undefined && Number.isFinite(value) && isBetter(value, state.best.value, bestMode)) {
          state.best = { value, epoch: epochNumber };
          bestWeights = await readAllWeights(model);
        }
        if (validate && schedule.onValidation(numeric)) print(`epoch ${epochNumber}: ${hparams.schedule.metric} on a plateau, lr now ${schedule.lrAt(state.epoch + 1, 0)}`);
        const stopping = hparams.early_stopping;
        if (stopping && validate) {
          const watched = numeric[stopping.metric];
          if (watched === undefined) {
            throw new Error(`early_stopping.metric ${stopping.metric} is not an epoch metric; available: ${Object.keys(numeric).join(', ')}`);
          }
          if (isBetter(watched, state.earlyStopping.best, resolveMode(stopping.metric, stopping.mode), stopping.min_delta)) {
            state.earlyStopping.best = watched;
            state.earlyStopping.bad = 0;
          } else {
            state.earlyStopping.bad += 1;
            if (state.earlyStopping.bad >= stopping.patience) {
              state.earlyStopping.stopped = true;
              print(`early stopping after epoch ${epochNumber}: ${stopping.metric} has not improved for ${stopping.patience} validations`);
            }
          }
        }
      }
      state.metrics.push(line as MetricsLine);
      options.progress?.epoch(
        Object.entries(line)
          .filter(([key]) => key !== 'type')
          .map(([key, value]) => `${key} ${typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(4) : value}`)
          .join('  '),
      );
      state.epoch += 1;
      state.stepInEpoch = 0;
      state.order = epochOrder(hparams.seed, state.epoch, train.count);
      state.epochSums = { loss: 0, images: 0, diceSum: [], diceImages: 0, seconds: 0 };
      await saveCheckpoint();
    }
  } finally {
    await prefetcher?.drain();
    options.progress?.stop();
    if (!options.engine) await engine.dispose();
    optimizer.dispose();
  }
  return { status: 'done', metrics: state.metrics, summary: summary(), bestWeights: bestWeights ?? (await readAllWeights(model)) };
}

// Synchronous data-parallel training across worker threads. tfjs turns wasm multithreading off in Node, so one
// backend uses one core; here each step's batch is split into `workers` parts: part 0 runs on the main thread,
// parts 1.. on worker threads that each hold their own backend and model copy. The main thread then averages
// the gradients (weighted by part size, always in part order, so the result is deterministic), averages the
// batch-norm statistics the same way, and applies the optimizer; the next step broadcasts the new weights.
// The workers hold no state of their own between steps, so checkpoints and exact resume are unchanged
// (resume with the same worker count: a different split changes the arithmetic).
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../pool/start-worker.js';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BackendName } from '../tf/backend.js';
import {
  LocalGradientEngine,
  itemSizes,
  type BatchEvaluation,
  type BatchGeometry,
  type BatchGradients,
  type EvalBatch,
  type GradientEngine,
} from './gradients.js';
import type { WorkerEval, WorkerInit, WorkerReply, WorkerStep } from './parallel-worker.js';

/**
 * The worker count `auto` means: 2 (capped by the cores) for the single-threaded backends (wasm in Node, cpu),
 * 1 for the native TensorFlow backends, which thread by themselves. An explicit 1 or 2 is always respected.
 */
export function resolveWorkers(preference: 'auto' | 1 | 2, backend: BackendName): number {
  if (preference !== 'auto') return preference;
  // A second thread with its own wasm backend trained the Carvana U-Net 1.5-1.9x faster on 2 idle cores
  // (bench/train-speed.ts, bench/train-parallel.ts).
  if (backend !== 'wasm' && backend !== 'cpu') return 1;
  return Math.min(2, os.availableParallelism());
}

/** Sizes of `parts` contiguous parts of `count` items: as equal as possible, larger ones first. */
export function splitSizes(count: number, parts: number): number[] {
  const used = Math.min(parts, count);
  return Array.from({ length: used }, (_, i) => Math.floor(count / used) + (i < count % used ? 1 : 0));
}

class WorkerHandle {
  private pending: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`training worker exited with code ${code}`)));
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending;
    this.pending = null;
    if (reply.type === 'error') {
      const error = new Error(`training worker failed: ${reply.message}`);
      this.failure = error;
      pending?.reject(error);
    } else {
      pending?.resolve(reply);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.pending?.reject(error);
    this.pending = null;
  }

  next(): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.pending = { resolve, reject }));
  }
}

function startTrainingWorker(init: WorkerInit): Worker {
  return startWorker(siblingModule(import.meta.url, 'parallel-worker'), init);
}

export class DataParallelEngine implements GradientEngine {
  private readonly local: LocalGradientEngine;

  private constructor(
    private readonly model: LayersModel,
    private readonly geometry: BatchGeometry,
    private readonly workers: WorkerHandle[],
  ) {
    this.local = new LocalGradientEngine(model, geometry);
  }

  /** Starts `parts - 1` worker threads, each loading the model from `modelDir` on `backend`. */
  static async start(model: LayersModel, modelDir: string, geometry: BatchGeometry, parts: number, backend: BackendName): Promise<DataParallelEngine> {
    const init: WorkerInit = { modelDir, backend, geometry };
    const handles = Array.from({ length: parts - 1 }, () => new WorkerHandle(startTrainingWorker(init)));
    try {
      await Promise.all(handles.map((handle) => handle.next()));
    } catch (error) {
      await Promise.all(handles.map((handle) => handle.worker.terminate()));
      throw error;
    }
    return new DataParallelEngine(model, geometry, handles);
  }

  async compute(x: Float32Array, y: Uint8Array, count: number): Promise<BatchGradients> {
    const sizes = splitSizes(count, this.workers.length + 1);
    if (sizes.length === 1) return this.local.compute(x, y, count);
    const { xSize, ySize } = itemSizes(this.geometry.shape);
    // Send parts 1.. to the workers first, then compute part 0 here while they run. Every buffer sent is a
    // fresh copy and is transferred, not cloned.
    const weights = await this.readWeights();
    const replies: Promise<WorkerReply>[] = [];
    let offset = sizes[0]!;
    for (let part = 1; part < sizes.length; part++) {
      const size = sizes[part]!;
      const handle = this.workers[part - 1]!;
      const reply = handle.next();
      const message: WorkerStep = {
        type: 'step',
        weights: part === sizes.length - 1 ? weights : weights.map((values) => values.slice()),
        x: x.slice(offset * xSize, (offset + size) * xSize),
        y: y.slice(offset * ySize, (offset + size) * ySize),
        count: size,
      };
      handle.worker.postMessage(message, [...message.weights.map((values) => values.buffer as ArrayBuffer), message.x.buffer as ArrayBuffer, message.y.buffer as ArrayBuffer]);
      replies.push(reply);
      offset += size;
    }
    const own = await this.local.compute(x.subarray(0, sizes[0]! * xSize), y.subarray(0, sizes[0]! * ySize), sizes[0]!);
    const results = [own, ...(await Promise.all(replies))] as const;
    const parts = results.map((result, i) => {
      if (i === 0) return { loss: own.loss, probabilities: own.probabilities, grads: null, nonTrainable: null };
      const reply = result as WorkerReply;
      if (reply.type !== 'result') throw new Error(`training worker sent ${reply.type} instead of a result`);
      return reply;
    });
    const fractions = sizes.map((size) => size / count);
    let loss = 0;
    parts.forEach((part, i) => (loss += fractions[i]! * part.loss));
    const probabilities = new Float32Array(count * ySize * this.geometry.classes);
    let at = 0;
    for (const part of parts) {
      probabilities.set(part.probabilities, at);
      at += part.probabilities.length;
    }
    const grads = own.grads.map((ownGrad, index) =>
      tf.tidy(() => {
        let sum = tf.mul(ownGrad, fractions[0]!);
        for (let part = 1; part < parts.length; part++) {
          const values = parts[part]!.grads![index]!;
          sum = tf.add(sum, tf.mul(tf.tensor(values, ownGrad.shape, 'float32'), fractions[part]!));
        }
        return sum;
      }),
    );
    tf.dispose(own.grads);
    // Batch-norm moving statistics: the same weighted average (the main thread's part already updated them here).
    tf.tidy(() => {
      this.model.nonTrainableWeights.forEach((weight, index) => {
        let sum = tf.mul(weight.read(), fractions[0]!);
        for (let part = 1; part < parts.length; part++) {
          sum = tf.add(sum, tf.mul(tf.tensor(parts[part]!.nonTrainable![index]!, weight.shape as number[], 'float32'), fractions[part]!));
        }
        weight.write(sum);
      });
    });
    return { loss, grads, probabilities };
  }

  /** Copies of every weight (model.weights order) to send to the workers. */
  private async readWeights(): Promise<Float32Array[]> {
    const weights: Float32Array[] = [];
    for (const weight of this.model.weights) weights.push(((await weight.read().data()) as Float32Array).slice());
    return weights;
  }

  /**
   * Validation batches dealt round-robin to the threads (batch b to thread b mod threads), whole: a batch's
   * result is bit-identical to one thread's, so validation metrics do not depend on the worker count.
   */
  async evaluate(batches: readonly EvalBatch[]): Promise<BatchEvaluation[]> {
    const threads = Math.min(this.workers.length + 1, batches.length);
    if (threads <= 1) return this.local.evaluate(batches);
    const weights = await this.readWeights();
    const replies: Promise<WorkerReply>[] = [];
    for (let thread = 1; thread < threads; thread++) {
      const handle = this.workers[thread - 1]!;
      const reply = handle.next();
      const mine = batches
        .filter((_batch, b) => b % threads === thread)
        .map((batch) => ({ x: batch.x.slice(), y: batch.y.slice(), count: batch.count }));
      const message: WorkerEval = { type: 'eval', weights: thread === threads - 1 ? weights : weights.map((values) => values.slice()), batches: mine };
      const transfers = [...message.weights, ...mine.flatMap((batch) => [batch.x, batch.y])].map((array) => array.buffer as ArrayBuffer);
      handle.worker.postMessage(message, transfers);
      replies.push(reply);
    }
    const own = await this.local.evaluate(batches.filter((_batch, b) => b % threads === 0));
    const fromWorkers = (await Promise.all(replies)).map((reply) => {
      if (reply.type !== 'evaluated') throw new Error(`training worker sent ${reply.type} instead of validation results`);
      return reply.results;
    });
    const perThread = [own, ...fromWorkers];
    return batches.map((_batch, b) => perThread[b % threads]![Math.floor(b / threads)]!);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((handle) => handle.worker.terminate()));
  }
}

export function createParallelEngine(
  model: LayersModel,
  modelDir: string,
  geometry: BatchGeometry,
  workers: number,
  backend: BackendName,
): Promise<DataParallelEngine> {
  return DataParallelEngine.start(model, modelDir, geometry, workers, backend);
}

// A data-parallel training worker thread: its own TensorFlow.js backend and copy of the model. Each step it
// receives every weight from the main thread, computes loss and gradients on its part of the batch and sends
// back the gradients and its updated batch-norm statistics (lib/train/parallel.ts averages them). For
// validation it receives the weights and whole batches and sends back each batch's loss and output.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendName } from '../tf/backend.js';
import { loadModelFromDir } from '../tf/model-io.js';
import { LocalGradientEngine, evaluateBatch, writeAllWeights, type BatchEvaluation, type BatchGeometry, type EvalBatch } from './gradients.js';
import type { NamedArray } from './checkpoint.js';

export interface WorkerInit {
  modelDir: string;
  backend: BackendName;
  geometry: BatchGeometry;
}

export interface WorkerStep {
  type: 'step';
  weights: Float32Array[];
  x: Float32Array;
  y: Uint8Array;
  count: number;
}

export interface WorkerEval {
  type: 'eval';
  weights: Float32Array[];
  batches: EvalBatch[];
}

export type WorkerMessage = WorkerStep | WorkerEval;

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; loss: number; grads: Float32Array[]; probabilities: Float32Array; nonTrainable: Float32Array[] }
  | { type: 'evaluated'; results: BatchEvaluation[] }
  | { type: 'error'; message: string };

const port = parentPort;
if (port === null) throw new Error('lib/train/parallel-worker.ts must run in a worker thread');

const init = workerData as WorkerInit;
try {
  await initBackend(init.backend);
  const model = await loadModelFromDir(init.modelDir);
  const engine = new LocalGradientEngine(model, init.geometry);
  const names = model.weights.map((weight) => ({ name: weight.originalName, shape: [...weight.shape] as number[] }));
  const setWeights = (weights: Float32Array[]): void => {
    const arrays: NamedArray[] = names.map((entry, i) => ({ ...entry, values: weights[i]! }));
    writeAllWeights(model, arrays);
  };
  const step = async (message: WorkerStep): Promise<void> => {
    setWeights(message.weights);
    const result = await engine.compute(message.x, message.y, message.count);
    const grads: Float32Array[] = [];
    // Copies: on the cpu backend data() may hand out the backend's own storage, which must not be transferred.
    for (const grad of result.grads) grads.push(((await grad.data()) as Float32Array).slice());
    for (const grad of result.grads) grad.dispose();
    const nonTrainable: Float32Array[] = [];
    for (const weight of model.nonTrainableWeights) nonTrainable.push(((await weight.read().data()) as Float32Array).slice());
    const probabilities = result.probabilities.slice();
    const reply: WorkerReply = { type: 'result', loss: result.loss, grads, probabilities, nonTrainable };
    port.postMessage(reply, [...grads, ...nonTrainable, probabilities].map((array) => array.buffer as ArrayBuffer));
  };
  const evaluate = async (message: WorkerEval): Promise<void> => {
    setWeights(message.weights);
    const results: BatchEvaluation[] = [];
    for (const batch of message.batches) {
      const result = await evaluateBatch(model, init.geometry, batch);
      results.push({ loss: result.loss, probabilities: result.probabilities.slice() });
    }
    const reply: WorkerReply = { type: 'evaluated', results };
    port.postMessage(reply, results.map((result) => result.probabilities.buffer as ArrayBuffer));
  };
  port.on('message', (message: WorkerMessage) => {
    void (async () => {
      try {
        if (message.type === 'step') await step(message);
        else await evaluate(message);
      } catch (error) {
        port.postMessage({ type: 'error', message: (error as Error).stack ?? String(error) } satisfies WorkerReply);
      }
    })();
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
} catch (error) {
  port.postMessage({ type: 'error', message: (error as Error).stack ?? String(error) } satisfies WorkerReply);
}

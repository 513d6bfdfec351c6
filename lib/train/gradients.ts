// One optimisation step's forward and backward pass on the calling thread: the loss and the gradients of the
// trainable weights over a batch. The data-parallel engine (parallel.ts) runs this same code on parts of the
// batch in worker threads and averages.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { LossName } from './hparams.js';
import { computeLoss, lossTargetFor } from './losses.js';
import type { NamedArray, TensorSignature } from './checkpoint.js';

export interface BatchGradients {
  /** Mean loss over the batch. */
  loss: number;
  /** One per trainable weight, in `trainableWeights` order; the caller disposes them. */
  grads: tf.Tensor[];
  /** The model's output on the batch (for the training Dice), [count, H, W, C] flattened. */
  probabilities: Float32Array;
}

/** Inference-mode loss and output of one validation batch. */
export interface BatchEvaluation {
  /** Mean loss over the batch. */
  loss: number;
  /** [count, H, W, C] flattened. */
  probabilities: Float32Array;
}

/** One validation batch: `count` items of a sample-major dataset. */
export interface EvalBatch {
  x: Float32Array;
  y: Uint8Array;
  count: number;
}

export interface GradientEngine {
  /** Forward + backward over `count` items; batch-norm moving statistics in the model are updated. */
  compute(x: Float32Array, y: Uint8Array, count: number): Promise<BatchGradients>;
  /**
   * Inference-mode evaluation of whole batches with the model's current weights, results in batch order.
   * Each batch is computed exactly as on one thread, so the results do not depend on the engine.
   */
  evaluate(batches: readonly EvalBatch[]): Promise<BatchEvaluation[]>;
  dispose(): Promise<void>;
}

export interface BatchGeometry {
  /** One input item: [H, W, C] (2D) or [D, H, W, C] (3D), channels last. */
  shape: number[];
  /** 1 = binary sigmoid, K > 1 = softmax. */
  classes: number;
  loss: LossName;
  /** The label value of pixels no loss or Dice counts (the dataset's `ignore` values); absent: none. */
  ignoreIndex?: number;
}

/** Values per item of x (all of `shape`) and of y (one class index per pixel/voxel). */
export function itemSizes(shape: readonly number[]): { xSize: number; ySize: number } {
  const xSize = shape.reduce((a, b) => a * b, 1);
  return { xSize, ySize: xSize / shape[shape.length - 1]! };
}

/** The labels of `count` items as the [count, ...spatial, 1] tensor the losses take. */
function labelTensor(y: Uint8Array, count: number, shape: readonly number[]): tf.Tensor {
  return tf.tensor(Int32Array.from(y), [count, ...shape.slice(0, -1), 1], 'int32');
}

/** The trainable tf.Variables of a model with their stable names (layer/weight), in a fixed order. */
export function trainableVariables(model: LayersModel): { name: string; variable: tf.Variable }[] {
  return model.trainableWeights.map((weight) => ({ name: weight.originalName, variable: weight.read() as tf.Variable }));
}

/** Every weight of the model (trainable, then batch-norm statistics etc.) with its name and shape. */
export function weightSignature(model: LayersModel): TensorSignature[] {
  return model.weights.map((weight) => ({ name: weight.originalName, shape: [...weight.shape] as number[] }));
}

/** A copy of every weight's values (model.weights order). */
export async function readAllWeights(model: LayersModel): Promise<NamedArray[]> {
  const out: NamedArray[] = [];
  for (const weight of model.weights) {
    const values = (await weight.read().data()) as Float32Array;
    out.push({ name: weight.originalName, shape: [...weight.shape] as number[], values: Float32Array.from(values) });
  }
  return out;
}

/** Sets every weight from arrays in model.weights order (names and shapes checked by the caller). */
export function writeAllWeights(model: LayersModel, arrays: readonly NamedArray[]): void {
  const weights = model.weights;
  if (arrays.length !== weights.length) throw new Error(`expected ${weights.length} weight arrays, got ${arrays.length}`);
  tf.tidy(() => {
    weights.forEach((weight, i) => {
      weight.write(tf.tensor(arrays[i]!.values, weight.shape as number[], 'float32'));
    });
  });
}

/** Loss and output of one batch in inference mode (no tape, batch-norm statistics untouched). */
export async function evaluateBatch(model: LayersModel, geometry: BatchGeometry, batch: EvalBatch): Promise<BatchEvaluation> {
  const [loss, probabilities] = tf.tidy(() => {
    const output = model.apply(tf.tensor(batch.x, [batch.count, ...geometry.shape], 'float32'), { training: false }) as tf.Tensor;
    const { target, valid } = lossTargetFor(labelTensor(batch.y, batch.count, geometry.shape), geometry.classes, geometry.ignoreIndex);
    return [computeLoss(geometry.loss, output, target, valid), output] as const;
  });
  const lossValue = (await loss.data())[0]!;
  const probabilityValues = (await probabilities.data()) as Float32Array;
  loss.dispose();
  probabilities.dispose();
  return { loss: lossValue, probabilities: probabilityValues };
}

export class LocalGradientEngine implements GradientEngine {
  private readonly variables: tf.Variable[];

  constructor(
    private readonly model: LayersModel,
    private readonly geometry: BatchGeometry,
  ) {
    this.variables = trainableVariables(model).map((entry) => entry.variable);
  }

  computeSync(x: Float32Array, y: Uint8Array, count: number): { loss: tf.Scalar; grads: tf.Tensor[]; probabilities: tf.Tensor } {
    let probabilities: tf.Tensor | null = null;
    const result = tf.tidy(() => {
      const xs = tf.tensor(x, [count, ...this.geometry.shape], 'float32');
      const { target, valid } = lossTargetFor(labelTensor(y, count, this.geometry.shape), this.geometry.classes, this.geometry.ignoreIndex);
      const { value, grads } = tf.variableGrads(() => {
        const output = this.model.apply(xs, { training: true }) as tf.Tensor;
        probabilities = tf.keep(output);
        return computeLoss(this.geometry.loss, output, target, valid);
      }, this.variables);
      // variableGrads keys by variable name; return them in trainable order.
      return { loss: value, grads: this.variables.map((variable) => grads[variable.name]!) };
    });
    return { loss: result.loss, grads: result.grads, probabilities: probabilities! };
  }

  async compute(x: Float32Array, y: Uint8Array, count: number): Promise<BatchGradients> {
    const { loss, grads, probabilities } = this.computeSync(x, y, count);
    const lossValue = (await loss.data())[0]!;
    const probabilityValues = (await probabilities.data()) as Float32Array;
    loss.dispose();
    probabilities.dispose();
    return { loss: lossValue, grads, probabilities: probabilityValues };
  }

  async evaluate(batches: readonly EvalBatch[]): Promise<BatchEvaluation[]> {
    const results: BatchEvaluation[] = [];
    for (const batch of batches) results.push(await evaluateBatch(this.model, this.geometry, batch));
    return results;
  }

  async dispose(): Promise<void> {}
}

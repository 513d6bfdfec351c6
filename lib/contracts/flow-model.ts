// flow-model.json, written beside the exported LayersModel: what the model expects and emits, the transform
// that prepares its inputs, and a probe (a fixed seeded input and the model's output on it) that model.load
// replays to prove the saved artefact reproduces the trained model. export writes it, model.load reads it:
// the contract lives here so neither stage imports the other.
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { JsonObject } from '../../engine/stage.js';
import { Rng } from '../rng.js';
import { getTf } from '../tf/backend.js';
import { defineContract, readContract } from './validator.js';

export const FLOW_MODEL_JSON = 'flow-model.json';

export interface ProbeRecord {
  seed: number;
  /** How the input is drawn, so any reader can rebuild it: see `probeInput`. */
  input: 'lib/rng Rng(seed).normal(), float32, row-major over shape';
  shape: number[];
  outputShape: number[];
  /** The model's output on the probe input: float32 little-endian, base64. */
  output: string;
  outputSum: number;
  /** The backend that computed `output` (another backend may differ by rounding). */
  backend: string;
}

export interface FlowModelFile {
  format: 'flow-model/v1';
  /** Per-item input shape without the batch axis, e.g. [H, W, C]. */
  inputShape: number[];
  outputShape: number[];
  /** Output channels: 1 = one sigmoid channel (binary), K > 1 = softmax over K classes. */
  classes: number;
  activation: 'sigmoid' | 'softmax';
  transform: JsonObject;
  probe: ProbeRecord;
}

/** The probe input: `count` standard-normal float32 values from a seeded lib/rng generator. */
export function probeInput(seed: number, shape: readonly number[]): Float32Array {
  const rng = new Rng(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = rng.normal();
  return values;
}

/** Runs the model on the probe input; returns the output values. */
export function runProbe(model: LayersModel, seed: number, shape: readonly number[]): Float32Array {
  const tf = getTf();
  return tf.tidy(() => {
    const input = tf.tensor(probeInput(seed, shape), [...shape], 'float32');
    const output = model.predict(input);
    const tensor = Array.isArray(output) ? output[0]! : output;
    return tensor.dataSync() as Float32Array;
  });
}

export function encodeFloat32(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

export function decodeFloat32(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

const dims = { type: 'array', items: { type: ['integer', 'null'] } };

export const flowModelContract = defineContract<FlowModelFile>({
  name: 'flow-model.json (flow-model/v1)',
  producer: 'export',
  schema: {
    type: 'object',
    required: ['format', 'inputShape', 'outputShape', 'classes', 'activation', 'transform', 'probe'],
    properties: {
      format: { const: 'flow-model/v1' },
      inputShape: dims,
      outputShape: dims,
      classes: { type: 'integer', minimum: 1 },
      activation: { enum: ['sigmoid', 'softmax'] },
      transform: { type: 'object' },
      probe: {
        type: 'object',
        required: ['seed', 'shape', 'outputShape', 'output', 'backend'],
        properties: { seed: { type: 'number' }, shape: { type: 'array', items: { type: 'integer' } }, output: { type: 'string' }, backend: { type: 'string' } },
      },
    },
  },
});

/** flow-model.json of an export folder, validated. */
export async function readFlowModel(dir: string): Promise<FlowModelFile> {
  return readContract(flowModelContract, path.join(dir, FLOW_MODEL_JSON));
}

/** Replays the probe on `model`; the largest absolute difference from the recorded output. */
export function probeDifference(model: LayersModel, flowModel: FlowModelFile): { maxAbsDiff: number; values: number } {
  const expected = decodeFloat32(flowModel.probe.output);
  const actual = runProbe(model, flowModel.probe.seed, flowModel.probe.shape);
  if (actual.length !== expected.length) {
    throw new Error(`probe output has ${actual.length} values, flow-model.json recorded ${expected.length}: the model's output shape changed`);
  }
  let maxAbsDiff = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Infinity : d;
  }
  return { maxAbsDiff, values: actual.length };
}

// TensorFlow.js LayersModel folders on the local disk without tfjs-node (whose file:// handler is the only
// built-in one in Node): model.json + weight shards, the same layout TensorFlow's converter and
// `model.save('file://…')` produce, so folders move freely between flow, tfjs-node and Python's tfjs converter.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { NamedTensorMap, Tensor, io } from '@tensorflow/tfjs-core';
import { getLayers, getTf } from './backend.js';
import { concatArrays } from '../typed-arrays.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

export interface SaveModelOptions {
  /** More files written into the same folder, inside the same atomic rename (e.g. export's flow-model.json). */
  extraFiles?: Record<string, string | Uint8Array>;
}

/** One weight as stored: its manifest entry and decoded values. */
export interface StoredWeights {
  /** The model.json the manifest came from. */
  modelJsonPath: string;
  modelJson: io.ModelJSON;
  specs: io.WeightsManifestEntry[];
  /** All groups' shards concatenated in manifest order. */
  data: ArrayBuffer;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function specBytes(spec: io.WeightsManifestEntry, file: string): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes = BYTES_PER_ELEMENT[dtype];
  if (bytes === undefined) {
    throw new Error(`${file}: weight "${spec.name}" has dtype ${dtype}, which flow cannot read from a weights file`);
  }
  return size * bytes;
}

/** Writes a folder atomically: fill a sibling temp folder, then rename it over `dir` (replacing any old one). */
export async function writeDirAtomic(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  await fs.promises.mkdir(parent, { recursive: true });
  const temp = path.join(parent, `.${path.basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await fs.promises.mkdir(temp);
  try {
    for (const [name, content] of Object.entries(files)) {
      const handle = await fs.promises.open(path.join(temp, name), 'w');
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    let old: string | null = null;
    if (fs.existsSync(dir)) {
      old = `${temp}.old`;
      await fs.promises.rename(dir, old);
    }
    await fs.promises.rename(temp, dir);
    if (old !== null) await fs.promises.rm(old, { recursive: true, force: true });
  } catch (error) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Saves `model` as `dir/model.json` + `dir/weights.bin` (one shard), atomically. */
export async function saveModelToDir(model: LayersModel, dir: string, options: SaveModelOptions = {}): Promise<void> {
  const tf = getTf();
  let files: Record<string, string | Uint8Array> | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : artifacts.weightData;
      const weights = new Uint8Array(new tf.io.CompositeArrayBuffer(weightData).slice());
      // The field set of tfjs's own file:// and http handlers (tfjs-core keeps its helper for this private).
      const modelJson: io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.format !== undefined) modelJson.format = artifacts.format;
      if (artifacts.generatedBy !== undefined) modelJson.generatedBy = artifacts.generatedBy;
      if (artifacts.convertedBy !== undefined) modelJson.convertedBy = artifacts.convertedBy;
      if (artifacts.trainingConfig !== undefined) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata !== undefined) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      files = { [MODEL_JSON]: JSON.stringify(modelJson), [WEIGHTS_BIN]: weights, ...options.extraFiles };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (files === null) throw new Error(`saving the model to ${dir} produced no artifacts`);
  await writeDirAtomic(dir, files);
}

/** `dir/model.json`, or the path itself when it already names a .json file. */
export function resolveModelJson(dirOrFile: string): string {
  if (dirOrFile.endsWith('.json')) return dirOrFile;
  return path.join(dirOrFile, MODEL_JSON);
}

export function readModelJson(modelJsonPath: string): io.ModelJSON {
  let text: string;
  try {
    text = fs.readFileSync(modelJsonPath, 'utf8');
  } catch (error) {
    throw new Error(
      `${modelJsonPath}: cannot read the model description (${(error as NodeJS.ErrnoException).code ?? String(error)}); ` +
        `point to a TensorFlow.js LayersModel folder holding model.json and its weight shards`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${modelJsonPath}: not valid JSON (${(error as Error).message}); the file is incomplete or corrupt`);
  }
  const modelJson = json as Partial<io.ModelJSON>;
  if (typeof json !== 'object' || json === null || !Array.isArray(modelJson.weightsManifest)) {
    throw new Error(`${modelJsonPath}: has no weightsManifest: not a TensorFlow.js model.json`);
  }
  if (modelJson.modelTopology === undefined || modelJson.modelTopology === null) {
    throw new Error(`${modelJsonPath}: has no modelTopology: not a TensorFlow.js LayersModel model.json`);
  }
  return modelJson as io.ModelJSON;
}

/**
 * Reads the weight shards a model.json names (paths relative to it), checking each group's byte count against
 * its manifest so a truncated or padded shard is refused with the file's name instead of decoding garbage.
 * `overrideShard` replaces the data of a single-shard manifest (a `.weights.bin` given beside a model.json).
 */
export function readStoredWeights(dirOrModelJson: string, overrideShard?: string): StoredWeights {
  const modelJsonPath = resolveModelJson(dirOrModelJson);
  const modelJson = readModelJson(modelJsonPath);
  const baseDir = path.dirname(modelJsonPath);
  const specs: io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  const groups = modelJson.weightsManifest;
  if (overrideShard !== undefined && (groups.length !== 1 || groups[0]!.paths.length !== 1)) {
    throw new Error(
      `${modelJsonPath}: names ${groups.reduce((n, g) => n + g.paths.length, 0)} weight shards; ` +
        `${overrideShard} can only stand in for a single-shard manifest: give the folder instead`,
    );
  }
  for (const group of groups) {
    const files = overrideShard !== undefined ? [overrideShard] : group.paths.map((p) => path.join(baseDir, p));
    const expected = group.weights.reduce((sum, spec) => sum + specBytes(spec, modelJsonPath), 0);
    const groupChunks: Uint8Array[] = [];
    let found = 0;
    for (const file of files) {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (error) {
        throw new Error(
          `${file}: weight shard named in ${modelJsonPath} cannot be read ` +
            `(${(error as NodeJS.ErrnoException).code ?? String(error)}); the model folder is incomplete: copy or re-export it`,
        );
      }
      groupChunks.push(bytes);
      found += bytes.length;
    }
    if (found !== expected) {
      const last = files[files.length - 1]!;
      throw new Error(
        `${last}: weight data is ${found < expected ? 'truncated' : 'longer than its manifest'}: ` +
          `${files.length > 1 ? `its group of ${files.length} shards holds` : 'holds'} ${found} bytes but ` +
          `${modelJsonPath} describes ${expected} bytes (${group.weights.length} weights); ` +
          `the file is incomplete or corrupt: re-run the stage that wrote it or copy it again`,
      );
    }
    specs.push(...group.weights);
    chunks.push(...groupChunks);
  }
  const data = concatArrays(chunks, (length) => new Uint8Array(length));
  return { modelJsonPath, modelJson, specs, data: data.buffer };
}

/** Decodes stored weights into tensors keyed by weight name (e.g. `enc1_conv1/kernel`). Caller disposes. */
export function decodeStoredWeights(stored: StoredWeights): NamedTensorMap {
  return getTf().io.decodeWeights(stored.data, stored.specs);
}

/** Loads a LayersModel folder (model.json + shards; single- or multi-shard, as TensorFlow's converter writes). */
export async function loadModelFromDir(dirOrModelJson: string): Promise<LayersModel> {
  const tf = getTf();
  const stored = readStoredWeights(dirOrModelJson);
  const artifacts = await tf.io.getModelArtifactsForJSON(stored.modelJson, async () => [stored.specs, stored.data]);
  try {
    return await getLayers().loadLayersModel({ load: async () => artifacts });
  } catch (error) {
    throw new Error(`${stored.modelJsonPath}: cannot rebuild the model: ${(error as Error).message}`);
  }
}

/** The model's weights as (name → live tensor), names as saved in model.json (`layer/kernel`). Do not dispose. */
export function getWeightsAsNamed(model: LayersModel): NamedTensorMap {
  const named: NamedTensorMap = {};
  for (const weight of model.weights) named[weight.originalName] = weight.read();
  return named;
}

/**
 * Assigns weights by name. Every model weight must be present with the same shape unless `partial` is set
 * (then absent names are left as they are); a shape mismatch is always an error.
 */
export function setWeightsFromNamed(
  model: LayersModel,
  named: Record<string, Tensor>,
  options: { partial?: boolean; source?: string } = {},
): void {
  const source = options.source ?? 'the given weights';
  for (const weight of model.weights) {
    const value = named[weight.originalName];
    if (value === undefined) {
      if (options.partial) continue;
      throw new Error(`${source}: has no weight "${weight.originalName}" that the model needs`);
    }
    if (value.shape.join(',') !== weight.shape.join(',')) {
      throw new Error(
        `${source}: weight "${weight.originalName}" has shape [${value.shape.join(', ')}], ` +
          `the model expects [${weight.shape.join(', ')}]`,
      );
    }
  }
  for (const weight of model.weights) {
    const value = named[weight.originalName];
    if (value !== undefined) weight.write(value);
  }
}

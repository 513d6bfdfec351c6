// Tensor datasets (docs/contracts.md "Tensor datasets"): uncompressed TFRecord shards of Examples
// { id, x (raw LE), y (raw LE), info (JSON) } plus spec.json, written last so a folder without it is
// known to be incomplete.
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { JsonObject } from '../../engine/stage.js';
import { decodeExample, encodeExample, getBytes, getString, type Features, ExampleError } from '../tfrecord/example.js';
import { TFRecordShardWriter, type ShardInfo } from '../tfrecord/writer.js';
import { writeJsonAtomic } from '../atomic.js';
import { listShards, readRecords } from '../tfrecord/reader.js';
import { TFRecordError } from '../tfrecord/framing.js';

export type TensorDType = 'float32' | 'uint8' | 'int32';
export interface TensorSpec {
  shape: number[];
  dtype: TensorDType;
}
export interface TensorDatasetSpec {
  format: 'flow.tensors/v1';
  count: number;
  x: TensorSpec;
  y: TensorSpec;
  classes: number;
  meta: JsonObject;
  /** The shards as written (file name, records, bytes); absent in folders written by hand. */
  shards?: ShardInfo[];
}
export type TensorArray = Float32Array | Uint8Array | Int32Array;
export interface TensorSample {
  id: string;
  x: TensorArray;
  y: TensorArray;
  info: JsonObject;
}

const DTYPES: Record<TensorDType, { bytes: number; array: typeof Float32Array | typeof Uint8Array | typeof Int32Array }> = {
  float32: { bytes: 4, array: Float32Array },
  uint8: { bytes: 1, array: Uint8Array },
  int32: { bytes: 4, array: Int32Array },
};

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN_HOST) throw new Error('lib/tensors/dataset.ts assumes a little-endian host (raw LE tensors)');

/** Number of elements of a shape (1 for a scalar []). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkTensorSpec(what: string, spec: TensorSpec): void {
  if (!spec || !Array.isArray(spec.shape) || spec.shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`${what}: shape must be a list of positive integers, got ${JSON.stringify(spec?.shape)}`);
  }
  if (!(spec.dtype in DTYPES)) throw new Error(`${what}: dtype must be float32, uint8 or int32, got ${JSON.stringify(spec.dtype)}`);
}

function dtypeOf(array: TensorArray): TensorDType | null {
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Uint8Array) return 'uint8';
  if (array instanceof Int32Array) return 'int32';
  return null;
}

function rawBytes(array: TensorArray): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Copies raw LE bytes into a fresh, aligned typed array of `dtype`. */
function fromRaw(bytes: Uint8Array, dtype: TensorDType): TensorArray {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const Ctor = DTYPES[dtype].array;
  return new Ctor(copy.buffer, 0, bytes.length / DTYPES[dtype].bytes);
}

export interface TensorWriterOptions {
  x: TensorSpec;
  y: TensorSpec;
  classes: number;
  meta?: JsonObject;
  /** Records per shard (default 256). */
  shardSize?: number;
}

export class TensorDatasetWriter {
  private readonly ids = new Set<string>();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly options: TensorWriterOptions,
    private readonly shards: TFRecordShardWriter,
  ) {}

  static async create(dir: string, spec: TensorWriterOptions): Promise<TensorDatasetWriter> {
    checkTensorSpec(`${dir}: x`, spec.x);
    checkTensorSpec(`${dir}: y`, spec.y);
    if (!Number.isInteger(spec.classes) || spec.classes < 1) throw new Error(`${dir}: classes must be a positive integer, got ${spec.classes}`);
    const shards = await TFRecordShardWriter.create(dir, { compression: 'none', shardRecords: spec.shardSize ?? 256 });
    return new TensorDatasetWriter(dir, spec, shards);
  }

  /** Appends one sample; x and y must have the spec's dtype and element count. */
  async add(sample: TensorSample): Promise<void> {
    if (this.closed) throw new Error(`${this.dir}: add after close`);
    for (const [name, array, spec] of [['x', sample.x, this.options.x], ['y', sample.y, this.options.y]] as const) {
      const dtype = dtypeOf(array);
      if (dtype !== spec.dtype) throw new Error(`${this.dir}: sample '${sample.id}': ${name} is ${dtype ?? typeof array}, the spec says ${spec.dtype}`);
      if (array.length !== elementCount(spec.shape)) {
        throw new Error(`${this.dir}: sample '${sample.id}': ${name} has ${array.length} values, the spec's shape [${spec.shape}] needs ${elementCount(spec.shape)}`);
      }
    }
    if (this.ids.has(sample.id)) throw new Error(`${this.dir}: sample id '${sample.id}' added twice`);
    this.ids.add(sample.id);
    const features: Features = {
      id: { kind: 'bytes', value: [new TextEncoder().encode(sample.id)] },
      x: { kind: 'bytes', value: [rawBytes(sample.x)] },
      y: { kind: 'bytes', value: [rawBytes(sample.y)] },
      info: { kind: 'bytes', value: [new TextEncoder().encode(JSON.stringify(sample.info ?? {}))] },
    };
    await this.shards.write(encodeExample(features));
  }

  /** Closes the shards and writes spec.json (last). */
  async close(): Promise<TensorDatasetSpec> {
    if (this.closed) throw new Error(`${this.dir}: closed twice`);
    this.closed = true;
    const shards = await this.shards.close();
    const spec: TensorDatasetSpec = {
      format: 'flow.tensors/v1',
      count: this.ids.size,
      x: { shape: [...this.options.x.shape], dtype: this.options.x.dtype },
      y: { shape: [...this.options.y.shape], dtype: this.options.y.dtype },
      classes: this.options.classes,
      meta: this.options.meta ?? {},
      shards,
    };
    await writeJsonAtomic(path.join(this.dir, 'spec.json'), spec);
    return spec;
  }

  /** Removes what was written (for a failing stage). */
  async abort(): Promise<void> {
    this.closed = true;
    await this.shards.abort();
  }
}

/** Reads and checks a tensor dataset's spec.json. */
export async function readTensorSpec(dir: string): Promise<TensorDatasetSpec> {
  const file = path.join(dir, 'spec.json');
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message}); the tensor dataset is missing or was not written completely`);
  }
  let spec: TensorDatasetSpec;
  try {
    spec = JSON.parse(text) as TensorDatasetSpec;
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (spec.format !== 'flow.tensors/v1') throw new Error(`${file}: format is ${JSON.stringify(spec.format)}, expected "flow.tensors/v1"`);
  if (!Number.isInteger(spec.count) || spec.count < 0) throw new Error(`${file}: count must be a non-negative integer`);
  checkTensorSpec(`${file}: x`, spec.x);
  checkTensorSpec(`${file}: y`, spec.y);
  if (!Number.isInteger(spec.classes) || spec.classes < 1) throw new Error(`${file}: classes must be a positive integer`);
  spec.meta ??= {};
  return spec;
}

function decodeSample(dir: string, spec: TensorDatasetSpec, file: string, index: number, offset: number, data: Uint8Array): TensorSample {
  const where = `${path.join(dir, file)}: record ${index} at byte ${offset}`;
  try {
    const features = decodeExample(data);
    const id = getString(features, 'id');
    const tensors: TensorArray[] = [];
    for (const name of ['x', 'y'] as const) {
      const raw = getBytes(features, name);
      const want = elementCount(spec[name].shape) * DTYPES[spec[name].dtype].bytes;
      if (raw.length !== want) {
        throw new ExampleError(`feature '${name}' has ${raw.length} bytes, spec.json's ${spec[name].dtype} [${spec[name].shape}] needs ${want}`);
      }
      tensors.push(fromRaw(raw, spec[name].dtype));
    }
    const info = JSON.parse(getString(features, 'info')) as JsonObject;
    return { id, x: tensors[0]!, y: tensors[1]!, info };
  } catch (err) {
    if (err instanceof TFRecordError) throw err;
    throw new Error(`${where}: ${(err as Error).message}; the dataset does not match its spec.json: re-run the stage that wrote it`);
  }
}

/** Streams the samples of a tensor dataset in order, checked against spec.json. */
export async function* readTensorDataset(dir: string): AsyncGenerator<TensorSample> {
  const spec = await readTensorSpec(dir);
  const shards = await listShards(dir);
  let count = 0;
  for (const shard of shards) {
    for await (const record of readRecords(path.join(dir, shard.file), { compression: shard.compression })) {
      count++;
      if (count > spec.count) throw new Error(`${path.join(dir, shard.file)}: more records than spec.json's count ${spec.count}; re-run the stage that wrote it`);
      yield decodeSample(dir, spec, shard.file, record.index, record.offset, record.data);
    }
  }
  if (count !== spec.count) throw new Error(`${dir}: ${count} records in the shards but spec.json says ${spec.count}; re-run the stage that wrote it`);
}

/** A sample's y as class indices 0..255 (uint8 as stored, or checked when stored wider). */
export function classIndices(dir: string, sample: TensorSample): Uint8Array | TensorArray {
  if (sample.y instanceof Uint8Array) return sample.y;
  for (let j = 0; j < sample.y.length; j++) {
    const v = sample.y[j]!;
    if (!Number.isInteger(v) || v < 0 || v > 255) {
      throw new Error(`${dir}: sample '${sample.id}': y value ${v} at ${j} is not a class index 0..255`);
    }
  }
  return sample.y;
}

/**
 * Loads a whole tensor dataset: x as float32 and y as uint8, sample-major
 * (`x.length === count * elementCount(spec.x.shape)`).
 */
export async function loadTensorDataset(
  dir: string,
): Promise<{ spec: TensorDatasetSpec; ids: string[]; x: Float32Array; y: Uint8Array; info: JsonObject[] }> {
  const spec = await readTensorSpec(dir);
  const xSize = elementCount(spec.x.shape);
  const ySize = elementCount(spec.y.shape);
  const x = new Float32Array(spec.count * xSize);
  const y = new Uint8Array(spec.count * ySize);
  const ids: string[] = [];
  const info: JsonObject[] = [];
  for await (const sample of readTensorDataset(dir)) {
    const i = ids.length;
    x.set(sample.x, i * xSize);
    y.set(classIndices(dir, sample), i * ySize);
    ids.push(sample.id);
    info.push(sample.info);
  }
  return { spec, ids, x, y, info };
}

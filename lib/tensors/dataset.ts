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
import { checkDecode, decodeIntoFloat32, dtypeOf, DTYPES, isTensorDType, quantize, quantizeAuto, widerDType, type DecodeAffine, type TensorArray, type TensorDType } from './dtype.js';

/** A stored tensor: its shape, the dtype on disk, and how stored values become the float32 the model sees. */
export interface TensorSpec {
  shape: number[];
  /** The dtype on disk; with `auto`, the widest any record used (each record names its own, see TensorWriterSpec). */
  dtype: TensorDType;
  /** value = stored * scale[c] + offset[c] per channel (last axis); absent: value = stored. */
  decode?: DecodeAffine;
  /** Written with dtype 'auto': each record carries its own `<name>_dtype` feature. */
  auto?: true;
}
/** What a writer is asked for: a fixed dtype (values are checked to fit it exactly) or `auto`. */
export interface TensorWriterSpec {
  shape: number[];
  dtype: TensorDType | 'auto';
  decode?: DecodeAffine;
}
export const TENSORS_FORMAT = 'flow.tensors/v2';
/** v1: no decode, no auto (folders written before compact storage); still read. */
const READABLE_FORMATS = ['flow.tensors/v1', TENSORS_FORMAT];
export interface TensorDatasetSpec {
  format: 'flow.tensors/v1' | 'flow.tensors/v2';
  count: number;
  x: TensorSpec;
  y: TensorSpec;
  classes: number;
  meta: JsonObject;
  /** The shards as written (file name, records, bytes); absent in folders written by hand. */
  shards?: ShardInfo[];
}
export type { TensorArray, TensorDType } from './dtype.js';
export interface TensorSample {
  id: string;
  x: TensorArray;
  y: TensorArray;
  info: JsonObject;
}
/** A sample as the reader hands it: x decoded to float32, y as stored (class indices). */
export interface DecodedSample {
  id: string;
  x: Float32Array;
  y: TensorArray;
  info: JsonObject;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN_HOST) throw new Error('lib/tensors/dataset.ts assumes a little-endian host (raw LE tensors)');

/** Number of elements of a shape (1 for a scalar []). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkTensorSpec(what: string, spec: { shape: number[]; dtype: string; decode?: DecodeAffine }, allowAuto = false): void {
  if (!spec || !Array.isArray(spec.shape) || spec.shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`${what}: shape must be a list of positive integers, got ${JSON.stringify(spec?.shape)}`);
  }
  if (!isTensorDType(spec.dtype) && !(allowAuto && spec.dtype === 'auto')) {
    throw new Error(`${what}: dtype must be float32, uint8, int16 or int32${allowAuto ? ' (or auto)' : ''}, got ${JSON.stringify(spec.dtype)}`);
  }
  checkDecode(what, spec.decode, channelsOf(spec.shape));
}

function channelsOf(shape: readonly number[]): number {
  return shape[shape.length - 1] ?? 1;
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
  x: TensorWriterSpec;
  y: TensorWriterSpec;
  classes: number;
  meta?: JsonObject;
  /** Records per shard (default 256). */
  shardSize?: number;
}

/** The record feature naming a tensor's dtype when the dataset was written with dtype 'auto'. */
function dtypeFeature(name: 'x' | 'y'): string {
  return `${name}_dtype`;
}

export class TensorDatasetWriter {
  private readonly ids = new Set<string>();
  private closed = false;
  /** Per tensor, the widest dtype a record used (the fixed dtype unless auto). */
  private readonly widest: Record<'x' | 'y', TensorDType | null> = { x: null, y: null };
  /** Bytes of tensor data written (x and y), for bytes-per-sample reports. */
  tensorBytes = 0;

  private constructor(
    readonly dir: string,
    private readonly options: TensorWriterOptions,
    private readonly shards: TFRecordShardWriter,
  ) {}

  static async create(dir: string, spec: TensorWriterOptions): Promise<TensorDatasetWriter> {
    checkTensorSpec(`${dir}: x`, spec.x, true);
    checkTensorSpec(`${dir}: y`, spec.y, true);
    if (!Number.isInteger(spec.classes) || spec.classes < 1) throw new Error(`${dir}: classes must be a positive integer, got ${spec.classes}`);
    const shards = await TFRecordShardWriter.create(dir, { compression: 'none', shardRecords: spec.shardSize ?? 256 });
    return new TensorDatasetWriter(dir, spec, shards);
  }

  /** The stored form of one tensor: as given when it already has the spec's dtype, else converted losslessly or refused. */
  private store(sampleId: string, name: 'x' | 'y', array: TensorArray): { dtype: TensorDType; stored: TensorArray } {
    const spec = this.options[name];
    const what = `${this.dir}: sample '${sampleId}': ${name}`;
    const given = dtypeOf(array);
    if (given === null) throw new Error(`${what} is ${typeof array}, expected a typed array`);
    if (array.length !== elementCount(spec.shape)) {
      throw new Error(`${what} has ${array.length} values, the spec's shape [${spec.shape}] needs ${elementCount(spec.shape)}`);
    }
    const channels = channelsOf(spec.shape);
    if (spec.dtype === 'auto') {
      // Integer arrays are already in their stored form; floats go to the narrowest dtype that keeps every bit.
      if (given !== 'float32') return { dtype: given, stored: array };
      try {
        return quantizeAuto(array as Float32Array, spec.decode, channels);
      } catch (err) {
        throw new Error(`${what}: ${(err as Error).message}`);
      }
    }
    if (given === spec.dtype) return { dtype: given, stored: array };
    if (given !== 'float32') throw new Error(`${what} is ${given}, the spec says ${spec.dtype}`);
    return { dtype: spec.dtype, stored: quantize(array as Float32Array, spec.dtype, spec.decode, channels, what) };
  }

  /** Appends one sample; x and y must have the spec's element count and fit its dtype exactly. */
  async add(sample: TensorSample): Promise<void> {
    if (this.closed) throw new Error(`${this.dir}: add after close`);
    const x = this.store(sample.id, 'x', sample.x);
    const y = this.store(sample.id, 'y', sample.y);
    if (this.ids.has(sample.id)) throw new Error(`${this.dir}: sample id '${sample.id}' added twice`);
    this.ids.add(sample.id);
    const encoder = new TextEncoder();
    const features: Features = {
      id: { kind: 'bytes', value: [encoder.encode(sample.id)] },
      x: { kind: 'bytes', value: [rawBytes(x.stored)] },
      y: { kind: 'bytes', value: [rawBytes(y.stored)] },
      info: { kind: 'bytes', value: [encoder.encode(JSON.stringify(sample.info ?? {}))] },
    };
    for (const [name, tensor] of [['x', x], ['y', y]] as const) {
      this.widest[name] = this.widest[name] === null ? tensor.dtype : widerDType(this.widest[name]!, tensor.dtype);
      if (this.options[name].dtype === 'auto') features[dtypeFeature(name)] = { kind: 'bytes', value: [encoder.encode(tensor.dtype)] };
      this.tensorBytes += tensor.stored.byteLength;
    }
    await this.shards.write(encodeExample(features));
  }

  private finalSpec(name: 'x' | 'y'): TensorSpec {
    const asked = this.options[name];
    const dtype = asked.dtype === 'auto' ? (this.widest[name] ?? 'uint8') : asked.dtype;
    return { shape: [...asked.shape], dtype, ...(asked.decode ? { decode: asked.decode } : {}), ...(asked.dtype === 'auto' ? { auto: true as const } : {}) };
  }

  /** Closes the shards and writes spec.json (last). */
  async close(): Promise<TensorDatasetSpec> {
    if (this.closed) throw new Error(`${this.dir}: closed twice`);
    this.closed = true;
    const shards = await this.shards.close();
    const spec: TensorDatasetSpec = {
      format: TENSORS_FORMAT,
      count: this.ids.size,
      x: this.finalSpec('x'),
      y: this.finalSpec('y'),
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file}: expected a JSON object`);
  // Checked field by field below before it is used as a TensorDatasetSpec.
  const spec = parsed as TensorDatasetSpec;
  if (!READABLE_FORMATS.includes(spec.format)) throw new Error(`${file}: format is ${JSON.stringify(spec.format)}, expected one of ${READABLE_FORMATS.map((f) => JSON.stringify(f)).join(', ')}`);
  if (!Number.isInteger(spec.count) || spec.count < 0) throw new Error(`${file}: count must be a non-negative integer`);
  checkTensorSpec(`${file}: x`, spec.x);
  checkTensorSpec(`${file}: y`, spec.y);
  if (!Number.isInteger(spec.classes) || spec.classes < 1) throw new Error(`${file}: classes must be a positive integer`);
  spec.meta ??= {};
  return spec;
}

/** Bytes of one item of x and y as the model sees them (float32 x, uint8 class indices y). */
export function itemLayout(spec: TensorDatasetSpec): { xSize: number; ySize: number } {
  return { xSize: elementCount(spec.x.shape), ySize: elementCount(spec.y.shape) };
}

/**
 * One record's tensors: the raw stored bytes of x and y with their dtypes, checked against spec.json.
 * Throws a message naming `where` (file, record, byte offset).
 */
export function recordTensors(spec: TensorDatasetSpec, features: Features, where: string): { id: string; x: { bytes: Uint8Array; dtype: TensorDType }; y: { bytes: Uint8Array; dtype: TensorDType } } {
  try {
    const id = getString(features, 'id');
    const out = {} as Record<'x' | 'y', { bytes: Uint8Array; dtype: TensorDType }>;
    for (const name of ['x', 'y'] as const) {
      const tensor = spec[name];
      let dtype = tensor.dtype;
      if (tensor.auto) {
        const named = getString(features, dtypeFeature(name));
        if (!isTensorDType(named)) throw new ExampleError(`feature '${dtypeFeature(name)}' is ${JSON.stringify(named)}, not a dtype`);
        dtype = named;
      }
      const bytes = getBytes(features, name);
      const want = elementCount(tensor.shape) * DTYPES[dtype].bytes;
      if (bytes.length !== want) {
        throw new ExampleError(`feature '${name}' has ${bytes.length} bytes, spec.json's ${dtype} [${tensor.shape}] needs ${want}`);
      }
      out[name] = { bytes, dtype };
    }
    return { id, x: out.x, y: out.y };
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}; the dataset does not match its spec.json: re-run the stage that wrote it`);
  }
}

/** Decodes one record's x into `out` at element `at` as float32 (spec.json's decode applied). */
export function decodeX(spec: TensorDatasetSpec, x: { bytes: Uint8Array; dtype: TensorDType }, out: Float32Array, at: number): void {
  decodeIntoFloat32(x.bytes, x.dtype, spec.x.decode, channelsOf(spec.x.shape), out, at);
}

/** Writes one record's y into `out` at `at` as class indices 0..255; a wider stored value must be one. */
export function decodeY(spec: TensorDatasetSpec, y: { bytes: Uint8Array; dtype: TensorDType }, out: Uint8Array, at: number, where: string): void {
  if (y.dtype === 'uint8' && spec.y.decode === undefined) {
    out.set(y.bytes, at);
    return;
  }
  const count = y.bytes.length / DTYPES[y.dtype].bytes;
  const values = new Float32Array(count);
  decodeIntoFloat32(y.bytes, y.dtype, spec.y.decode, channelsOf(spec.y.shape), values, 0);
  for (let j = 0; j < count; j++) {
    const v = values[j]!;
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`${where}: y value ${v} at ${j} is not a class index 0..255`);
    out[at + j] = v;
  }
}

function decodeSample(dir: string, spec: TensorDatasetSpec, file: string, index: number, offset: number, data: Uint8Array): DecodedSample {
  const where = `${path.join(dir, file)}: record ${index} at byte ${offset}`;
  let features: Features;
  try {
    features = decodeExample(data);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}; the dataset does not match its spec.json: re-run the stage that wrote it`);
  }
  const tensors = recordTensors(spec, features, where);
  const x = new Float32Array(elementCount(spec.x.shape));
  decodeX(spec, tensors.x, x, 0);
  const y = spec.y.decode === undefined ? fromRaw(tensors.y.bytes, tensors.y.dtype) : (() => {
    const out = new Uint8Array(elementCount(spec.y.shape));
    decodeY(spec, tensors.y, out, 0, where);
    return out;
  })();
  let info: JsonObject;
  try {
    info = JSON.parse(getString(features, 'info')) as JsonObject;
  } catch (err) {
    throw new Error(`${where}: feature 'info': ${(err as Error).message}; the dataset does not match its spec.json: re-run the stage that wrote it`);
  }
  return { id: tensors.id, x, y, info };
}

/** Streams the samples of a tensor dataset in order, checked against spec.json: x as float32, y as stored. */
export async function* readTensorDataset(dir: string): AsyncGenerator<DecodedSample> {
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
export function classIndices(dir: string, sample: { id: string; y: TensorArray }): Uint8Array | TensorArray {
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

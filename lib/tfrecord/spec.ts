// spec.json beside tfrecord.write's shards (docs/contracts.md), and readExamples(): every record of every
// shard, decoded and checked against the spec, with errors naming file, record index and feature.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { decodeExample, featureLength, type Features } from './example.js';
import { TFRecordError, type Compression } from './framing.js';
import { listShards, readRecords } from './reader.js';
import type { ShardInfo } from './writer.js';

export interface FeatureSpec {
  type: 'bytes' | 'float' | 'int64';
  /**
   * Fixed shape of the value list (number of values = product of the shape; [] = one value), or null when
   * it varies per record. For bytes features it counts byte strings, not bytes.
   */
  shape: number[] | null;
  /** Element type of raw bytes (e.g. `float32` for `volume/data`). */
  dtype?: string;
  encoding?: 'jpeg' | 'png' | 'raw-le' | 'utf8' | 'json';
  /** True when some records leave the feature out (e.g. `label/data` for BraTS Validation patients). */
  optional?: boolean;
}

export interface TFRecordSpec {
  format: 'tf.train.Example';
  dataset: string;
  compression: Compression;
  records: number;
  shards: ShardInfo[];
  features: Record<string, FeatureSpec>;
}

export const SPEC_FILE = 'spec.json';

const FEATURE_TYPES = new Set(['bytes', 'float', 'int64']);
const COMPRESSIONS = new Set(['none', 'gzip', 'zlib']);

/** A spec.json that is missing, malformed, or does not match the shards. */
export class SpecError extends Error {
  override name = 'SpecError';
}

/** Reads and validates the spec.json of a shards folder. */
export async function readRecordSpec(dir: string): Promise<TFRecordSpec> {
  const file = path.join(dir, SPEC_FILE);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new SpecError(`${file}: cannot read (${(err as Error).message}); the shards folder is missing or was not written completely: re-run tfrecord.write`);
  }
  let spec: TFRecordSpec;
  try {
    spec = JSON.parse(text) as TFRecordSpec;
  } catch (err) {
    throw new SpecError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new SpecError(`${file}: ${what}`);
  };
  if (spec.format !== 'tf.train.Example') bad(`format is ${JSON.stringify(spec.format)}, expected "tf.train.Example"`);
  if (!COMPRESSIONS.has(spec.compression)) bad(`compression must be none, gzip or zlib, got ${JSON.stringify(spec.compression)}`);
  if (!Number.isInteger(spec.records) || spec.records < 0) bad('records must be a non-negative integer');
  if (!Array.isArray(spec.shards) || spec.shards.length === 0) bad('shards must list the shard files');
  for (const s of spec.shards) {
    if (typeof s.file !== 'string' || path.basename(s.file) !== s.file) bad(`shard file ${JSON.stringify(s.file)} must be a plain file name`);
    if (!Number.isInteger(s.records) || s.records < 0) bad(`shard ${s.file}: records must be a non-negative integer`);
  }
  if (spec.shards.reduce((a, s) => a + s.records, 0) !== spec.records) bad('the shards\' record counts do not add up to records');
  if (!spec.features || typeof spec.features !== 'object') bad('features must map feature names to {type, shape}');
  for (const [name, f] of Object.entries(spec.features)) {
    if (!FEATURE_TYPES.has(f.type)) bad(`feature '${name}': type must be bytes, float or int64, got ${JSON.stringify(f.type)}`);
    if (f.shape !== null && (!Array.isArray(f.shape) || f.shape.some((d) => !Number.isInteger(d) || d < 0))) {
      bad(`feature '${name}': shape must be null or a list of non-negative integers`);
    }
  }
  return spec;
}

/** Checks one decoded Example against the spec; returns the problem or null. */
export function checkExample(features: Features, spec: Record<string, FeatureSpec>): string | null {
  for (const [name, f] of Object.entries(spec)) {
    const got = Object.prototype.hasOwnProperty.call(features, name) ? features[name] : undefined;
    if (got === undefined) {
      if (f.optional) continue;
      return `feature '${name}' is missing (spec.json declares it)`;
    }
    if (got.kind !== f.type) return `feature '${name}' is ${got.kind === 'empty' ? 'an empty Feature' : `a ${got.kind} list`}, spec.json says ${f.type}`;
    if (f.shape) {
      const want = f.shape.reduce((a, b) => a * b, 1);
      if (featureLength(got) !== want) return `feature '${name}' holds ${featureLength(got)} values, spec.json's shape [${f.shape}] needs ${want}`;
    }
  }
  for (const name of Object.keys(features)) {
    if (!Object.prototype.hasOwnProperty.call(spec, name)) return `feature '${name}' is not declared in spec.json`;
  }
  return null;
}

export interface ExampleView {
  features: Features;
  /** Shard file name inside the folder. */
  file: string;
  /** Record index within the shard. */
  index: number;
  /** Byte offset of the record in the shard's (decompressed) stream. */
  offset: number;
  /** Length of the serialized Example (the record's data). */
  length: number;
}

/**
 * Streams the Examples of a shards folder in order (shard by shard), checked against spec.json: the
 * shard set is complete, counts match, every record's CRCs verify and every feature has the declared
 * type and shape. Errors name the file, record index, byte offset and feature.
 */
export async function* readExamples(dir: string): AsyncGenerator<ExampleView> {
  const spec = await readRecordSpec(dir);
  await checkShardList(dir, spec);
  for (const shard of spec.shards) yield* readShardExamples(dir, spec, shard);
}

/** Checks that the folder holds exactly the shards spec.json lists. */
export async function checkShardList(dir: string, spec: TFRecordSpec): Promise<void> {
  const onDisk = await listShards(dir);
  const listed = spec.shards.map((s) => s.file);
  if (onDisk.length !== listed.length || onDisk.some((s, i) => s.file !== listed[i])) {
    throw new SpecError(
      `${path.join(dir, SPEC_FILE)}: lists shards ${listed.join(', ')} but the folder holds ${onDisk.map((s) => s.file).join(', ')}; re-run tfrecord.write`,
    );
  }
}

/** The Examples of one shard of `dir`, checked as readExamples checks them (counts, CRCs, spec.json). */
export async function* readShardExamples(dir: string, spec: TFRecordSpec, shard: TFRecordSpec['shards'][number]): AsyncGenerator<ExampleView> {
  const file = path.join(dir, shard.file);
  let count = 0;
  for await (const record of readRecords(file, { compression: spec.compression })) {
    if (count >= shard.records) {
      throw new TFRecordError(file, record.index, record.offset, `more records than the ${shard.records} spec.json lists for this shard`, 're-run tfrecord.write');
    }
    count++;
    let features: Features;
    try {
      features = decodeExample(record.data);
    } catch (err) {
      throw new TFRecordError(file, record.index, record.offset, (err as Error).message);
    }
    const problem = checkExample(features, spec.features);
    if (problem) throw new TFRecordError(file, record.index, record.offset, problem, 'the records do not match spec.json: re-run tfrecord.write');
    yield { features, file: shard.file, index: record.index, offset: record.offset, length: record.data.length };
  }
  if (count !== shard.records) {
    throw new SpecError(`${file}: ${count} records but spec.json lists ${shard.records}; re-run tfrecord.write`);
  }
}

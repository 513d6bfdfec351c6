// The tf.train.Example codec (protobuf wire format), hand-written because the message is tiny and fixed
// and we need control a generated codec does not give: exact byte output (key order, packed lists as
// TensorFlow writes them), zero-copy bytes views on decode, and Float32Array lists without boxing every
// float. test/tfrecord/example.test.ts checks it against protobufjs in both directions.
//
//   Example  { Features features = 1; }
//   Features { map<string, Feature> feature = 1; }      // map entry: { string key = 1; Feature value = 2; }
//   Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
//   Int64List { repeated int64 value = 1 [packed]; }

/**
 * One feature. `empty` is a Feature with no list set (`Feature {}`): legal protobuf, written by some
 * TensorFlow tools for missing values, kept so such records re-encode byte for byte.
 */
export type Feature =
  | { kind: 'bytes'; value: Uint8Array[] }
  | { kind: 'float'; value: Float32Array }
  | { kind: 'int64'; value: bigint[] }
  | { kind: 'empty' };

export type Features = Record<string, Feature>;

/** A malformed Example, or a feature that is missing or of the wrong kind. */
export class ExampleError extends Error {
  override name = 'ExampleError';
}

export interface EncodeOptions {
  /**
   * `sorted` (default): features in code-unit order of their names, so equal features always give equal
   * bytes (what TensorFlow's deterministic serialization does). `insertion`: the object's key order, to
   * reproduce records written by tools that did not sort.
   */
  order?: 'sorted' | 'insertion';
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const TAG_FIELD1_LEN = (1 << 3) | WIRE_LEN; // 0x0a
const TAG_FIELD2_LEN = (2 << 3) | WIRE_LEN; // 0x12
const TAG_FIELD3_LEN = (3 << 3) | WIRE_LEN; // 0x1a

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------- encoding

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** int64 as protobuf writes it: two's complement in 64 bits, so negatives take 10 bytes. */
function int64VarintSize(value: bigint): number {
  let v = BigInt.asUintN(64, value);
  let size = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    size++;
  }
  return size;
}

class ByteSink {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(value: number): void {
    while (value >= 0x80) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.pos++] = value;
  }
  int64(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }
  bytes(data: Uint8Array): void {
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

/** Size of the list message inside a Feature (BytesList / FloatList / Int64List body), without its tag. */
function listBodySize(feature: Feature): number {
  switch (feature.kind) {
    case 'bytes': {
      let size = 0;
      for (const item of feature.value) size += 1 + varintSize(item.length) + item.length;
      return size;
    }
    case 'float': {
      const packed = feature.value.length * 4;
      return packed === 0 ? 0 : 1 + varintSize(packed) + packed;
    }
    case 'int64': {
      let packed = 0;
      for (const v of feature.value) packed += int64VarintSize(v);
      return feature.value.length === 0 ? 0 : 1 + varintSize(packed) + packed;
    }
    case 'empty':
      return 0;
  }
}

function int64PackedSize(values: bigint[]): number {
  let packed = 0;
  for (const v of values) packed += int64VarintSize(v);
  return packed;
}

/** Size of the Feature message body. */
function featureBodySize(feature: Feature): number {
  if (feature.kind === 'empty') return 0;
  const list = listBodySize(feature);
  return 1 + varintSize(list) + list;
}

function checkFeature(name: string, feature: Feature): void {
  switch (feature.kind) {
    case 'bytes':
      if (!Array.isArray(feature.value) || feature.value.some((v) => !(v instanceof Uint8Array))) {
        throw new ExampleError(`feature '${name}': a bytes feature needs an array of Uint8Array`);
      }
      return;
    case 'float':
      if (!(feature.value instanceof Float32Array)) {
        throw new ExampleError(`feature '${name}': a float feature needs a Float32Array`);
      }
      return;
    case 'int64':
      if (!Array.isArray(feature.value) || feature.value.some((v) => typeof v !== 'bigint')) {
        throw new ExampleError(`feature '${name}': an int64 feature needs an array of bigint`);
      }
      for (const v of feature.value) {
        if (v < -(1n << 63n) || v >= 1n << 63n) throw new ExampleError(`feature '${name}': ${v} does not fit in int64`);
      }
      return;
    case 'empty':
      return;
    default:
      throw new ExampleError(`feature '${name}': unknown kind ${JSON.stringify((feature as { kind: unknown }).kind)}`);
  }
}

/** Serializes a tf.train.Example. One allocation: sizes are computed first. */
export function encodeExample(features: Features, options: EncodeOptions = {}): Uint8Array {
  const names = Object.keys(features);
  if ((options.order ?? 'sorted') === 'sorted') names.sort();
  const keys = names.map((n) => utf8Encoder.encode(n));
  const entrySizes: number[] = [];
  let featuresBody = 0;
  for (let i = 0; i < names.length; i++) {
    const feature = features[names[i]!]!;
    checkFeature(names[i]!, feature);
    const valueSize = featureBodySize(feature);
    const entry = 1 + varintSize(keys[i]!.length) + keys[i]!.length + 1 + varintSize(valueSize) + valueSize;
    entrySizes.push(entry);
    featuresBody += 1 + varintSize(entry) + entry;
  }
  const total = 1 + varintSize(featuresBody) + featuresBody;
  const out = new ByteSink(new Uint8Array(total));
  out.byte(TAG_FIELD1_LEN); // Example.features
  out.varint(featuresBody);
  for (let i = 0; i < names.length; i++) {
    const feature = features[names[i]!]!;
    out.byte(TAG_FIELD1_LEN); // Features.feature (map entry)
    out.varint(entrySizes[i]!);
    out.byte(TAG_FIELD1_LEN); // entry.key
    out.varint(keys[i]!.length);
    out.bytes(keys[i]!);
    out.byte(TAG_FIELD2_LEN); // entry.value
    out.varint(featureBodySize(feature));
    switch (feature.kind) {
      case 'bytes':
        out.byte(TAG_FIELD1_LEN);
        out.varint(listBodySize(feature));
        for (const item of feature.value) {
          out.byte(TAG_FIELD1_LEN);
          out.varint(item.length);
          out.bytes(item);
        }
        break;
      case 'float': {
        out.byte(TAG_FIELD2_LEN);
        out.varint(listBodySize(feature));
        if (feature.value.length > 0) {
          out.byte(TAG_FIELD1_LEN);
          out.varint(feature.value.length * 4);
          const view = new DataView(out.buf.buffer, out.buf.byteOffset + out.pos, feature.value.length * 4);
          for (let j = 0; j < feature.value.length; j++) view.setFloat32(j * 4, feature.value[j]!, true);
          out.pos += feature.value.length * 4;
        }
        break;
      }
      case 'int64':
        out.byte(TAG_FIELD3_LEN);
        out.varint(listBodySize(feature));
        if (feature.value.length > 0) {
          out.byte(TAG_FIELD1_LEN);
          out.varint(int64PackedSize(feature.value));
          for (const v of feature.value) out.int64(v);
        }
        break;
      case 'empty':
        break;
    }
  }
  if (out.pos !== total) throw new Error(`internal: Example size ${out.pos} != computed ${total}`);
  return out.buf;
}

// ---------------------------------------------------------------- decoding

class ByteSource {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }
  fail(message: string): never {
    throw new ExampleError(`malformed Example: ${message} in ${this.what} at byte ${this.pos}`);
  }
  done(): boolean {
    return this.pos >= this.end;
  }
  /** A varint as a number; exact up to 2^53, which covers tags and lengths. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    this.fail('varint longer than 10 bytes');
  }
  int64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    this.fail('varint longer than 10 bytes');
  }
  /** Reads a length prefix and returns [start, end) of the delimited bytes. */
  delimited(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) this.fail(`length ${length} runs past the end (${this.end - start} bytes left)`);
    this.pos = start + length;
    return [start, this.pos];
  }
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.delimited();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        this.fail(`unsupported wire type ${wireType}`);
    }
  }
  advance(n: number): void {
    if (this.end - this.pos < n) this.fail('truncated field');
    this.pos += n;
  }
  sub(range: [number, number], what: string): ByteSource {
    return new ByteSource(this.buf, range[0], range[1], what);
  }
}

function decodeBytesList(src: ByteSource): Uint8Array[] {
  const values: Uint8Array[] = [];
  while (!src.done()) {
    const tag = src.varint();
    if (tag === TAG_FIELD1_LEN) {
      const [s, e] = src.delimited();
      values.push(src.buf.subarray(s, e));
    } else src.skip(tag & 7);
  }
  return values;
}

function decodeFloatList(src: ByteSource): Float32Array {
  // Collect as byte ranges first so the common packed case is one copy into an aligned Float32Array.
  const chunks: Array<[number, number]> = [];
  let count = 0;
  while (!src.done()) {
    const tag = src.varint();
    if (tag === TAG_FIELD1_LEN) {
      const range = src.delimited();
      if ((range[1] - range[0]) % 4 !== 0) src.fail('packed float list length is not a multiple of 4');
      chunks.push(range);
      count += (range[1] - range[0]) / 4;
    } else if (tag === ((1 << 3) | WIRE_FIXED32)) {
      const start = src.pos;
      src.advance(4);
      chunks.push([start, start + 4]);
      count += 1;
    } else src.skip(tag & 7);
  }
  const bytes = new Uint8Array(count * 4);
  let at = 0;
  for (const [s, e] of chunks) {
    bytes.set(src.buf.subarray(s, e), at);
    at += e - s;
  }
  if (!LITTLE_ENDIAN_HOST) {
    const view = new DataView(bytes.buffer);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  return new Float32Array(bytes.buffer);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decodeInt64List(src: ByteSource): bigint[] {
  const values: bigint[] = [];
  while (!src.done()) {
    const tag = src.varint();
    if (tag === TAG_FIELD1_LEN) {
      const packed = src.sub(src.delimited(), 'packed int64 list');
      while (!packed.done()) values.push(packed.int64());
    } else if (tag === ((1 << 3) | WIRE_VARINT)) {
      values.push(src.int64());
    } else src.skip(tag & 7);
  }
  return values;
}

function decodeFeature(src: ByteSource): Feature {
  let feature: Feature = { kind: 'empty' };
  while (!src.done()) {
    const tag = src.varint();
    // Protobuf oneof: the last list present wins.
    if (tag === TAG_FIELD1_LEN) feature = { kind: 'bytes', value: decodeBytesList(src.sub(src.delimited(), 'BytesList')) };
    else if (tag === TAG_FIELD2_LEN) feature = { kind: 'float', value: decodeFloatList(src.sub(src.delimited(), 'FloatList')) };
    else if (tag === TAG_FIELD3_LEN) feature = { kind: 'int64', value: decodeInt64List(src.sub(src.delimited(), 'Int64List')) };
    else src.skip(tag & 7);
  }
  return feature;
}

function decodeFeatures(src: ByteSource, into: Features): void {
  while (!src.done()) {
    const tag = src.varint();
    if (tag !== TAG_FIELD1_LEN) {
      src.skip(tag & 7);
      continue;
    }
    const entry = src.sub(src.delimited(), 'feature map entry');
    let key = '';
    let value: Feature = { kind: 'empty' };
    while (!entry.done()) {
      const entryTag = entry.varint();
      if (entryTag === TAG_FIELD1_LEN) {
        const [s, e] = entry.delimited();
        try {
          key = utf8Decoder.decode(entry.buf.subarray(s, e));
        } catch {
          entry.fail('feature name is not valid UTF-8');
        }
      } else if (entryTag === TAG_FIELD2_LEN) {
        value = decodeFeature(entry.sub(entry.delimited(), `feature '${key}'`));
      } else entry.skip(entryTag & 7);
    }
    into[key] = value; // a repeated key replaces the earlier one, as in protobuf maps
  }
}

/**
 * Parses a serialized tf.train.Example; throws ExampleError on malformed protobuf. Bytes values are views
 * into `data` (no copy): copy them if `data` is reused. Accepts packed and unpacked numeric lists.
 */
export function decodeExample(data: Uint8Array): Features {
  const src = new ByteSource(data, 0, data.length, 'Example');
  const features: Features = {};
  while (!src.done()) {
    const tag = src.varint();
    if (tag === 0) src.fail('field number 0');
    if (tag === TAG_FIELD1_LEN) decodeFeatures(src.sub(src.delimited(), 'Features'), features);
    else src.skip(tag & 7);
  }
  return features;
}

// ---------------------------------------------------------------- building features

type BytesLike = Uint8Array | string;

function toBytes(v: BytesLike): Uint8Array {
  return typeof v === 'string' ? utf8Encoder.encode(v) : v;
}

/** A bytes feature from one or more byte arrays or strings (strings are UTF-8 encoded). */
export function bytesFeature(value: BytesLike | readonly BytesLike[]): Feature {
  const list = Array.isArray(value) ? (value as readonly BytesLike[]) : [value as BytesLike];
  return { kind: 'bytes', value: list.map(toBytes) };
}

/** A float feature (values rounded to float32). */
export function floatFeature(value: number | ArrayLike<number>): Feature {
  return { kind: 'float', value: typeof value === 'number' ? Float32Array.of(value) : Float32Array.from(value) };
}

/** An int64 feature; numbers must be safe integers. */
export function int64Feature(value: number | bigint | ArrayLike<number | bigint>): Feature {
  const list: ArrayLike<number | bigint> = typeof value === 'number' || typeof value === 'bigint' ? [value] : value;
  const out: bigint[] = [];
  for (let i = 0; i < list.length; i++) {
    const v = list[i]!;
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new ExampleError(`int64Feature: ${v} is not a safe integer`);
    out.push(BigInt(v));
  }
  return { kind: 'int64', value: out };
}

/** A bytes feature holding one UTF-8 JSON document. */
export function jsonFeature(value: unknown): Feature {
  return bytesFeature(JSON.stringify(value));
}

// ---------------------------------------------------------------- reading features

function describe(f: Feature | undefined): string {
  return f === undefined ? 'missing' : f.kind === 'empty' ? 'an empty Feature (no list set)' : `a ${f.kind} list`;
}

/** The feature `name` of kind `kind`; throws naming the feature when it is absent or of another kind. */
export function getFeature<K extends Feature['kind']>(features: Features, name: string, kind: K): Extract<Feature, { kind: K }> {
  const f = Object.prototype.hasOwnProperty.call(features, name) ? features[name] : undefined;
  if (f === undefined || f.kind !== kind) {
    throw new ExampleError(`feature '${name}' should be a ${kind} list but is ${describe(f)}`);
  }
  return f as Extract<Feature, { kind: K }>;
}

function single<T>(name: string, values: ArrayLike<T>): T {
  if (values.length !== 1) throw new ExampleError(`feature '${name}' should hold exactly 1 value but holds ${values.length}`);
  return values[0]!;
}

/** All byte strings of a bytes feature. */
export function getBytesList(features: Features, name: string): Uint8Array[] {
  return getFeature(features, name, 'bytes').value;
}

/** The single byte string of a bytes feature. */
export function getBytes(features: Features, name: string): Uint8Array {
  return single(name, getBytesList(features, name));
}

function decodeUtf8(name: string, bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new ExampleError(`feature '${name}' is not valid UTF-8`);
  }
}

/** The single UTF-8 string of a bytes feature. */
export function getString(features: Features, name: string): string {
  return decodeUtf8(name, getBytes(features, name));
}

/** All UTF-8 strings of a bytes feature. */
export function getStrings(features: Features, name: string): string[] {
  return getBytesList(features, name).map((b) => decodeUtf8(name, b));
}

/** The single JSON document of a bytes feature. */
export function getJson(features: Features, name: string): unknown {
  const text = getString(features, name);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ExampleError(`feature '${name}' is not valid JSON: ${(err as Error).message}`);
  }
}

/** The values of a float feature. */
export function getFloats(features: Features, name: string): Float32Array {
  return getFeature(features, name, 'float').value;
}

/** The single value of a float feature. */
export function getFloat(features: Features, name: string): number {
  return single(name, getFloats(features, name));
}

/** The values of an int64 feature as bigint. */
export function getBigInts(features: Features, name: string): bigint[] {
  return getFeature(features, name, 'int64').value;
}

function toSafeNumber(name: string, v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new ExampleError(`feature '${name}' holds ${v}, beyond the range of a JavaScript number`);
  }
  return Number(v);
}

/** The values of an int64 feature as numbers (throws if one is not a safe integer). */
export function getInts(features: Features, name: string): number[] {
  return getBigInts(features, name).map((v) => toSafeNumber(name, v));
}

/** The single value of an int64 feature as a number. */
export function getInt(features: Features, name: string): number {
  return toSafeNumber(name, single(name, getBigInts(features, name)));
}

/** Number of values in a feature (0 for an empty Feature). */
export function featureLength(feature: Feature): number {
  return feature.kind === 'empty' ? 0 : feature.value.length;
}

// Storage dtypes of tensor datasets. A tensor is stored in the narrowest dtype that loses nothing and handed to
// training as float32: `value = stored * scale[c] + offset[c]` per channel c (the last axis) when spec.json
// gives a `decode` affine, else `value = stored`. The arithmetic is float64 rounded once to float32, which is
// exactly what a preprocess step computing `pixel * scale - mean / std` in float64 and storing float32 did, so a
// photograph kept as uint8 with its normalisation as `decode` reads back bit for bit.

export type TensorDType = 'float32' | 'uint8' | 'int16' | 'int32';
export type TensorArray = Float32Array | Uint8Array | Int16Array | Int32Array;

/** Per-channel affine from stored values to the float32 the model sees. */
export interface DecodeAffine {
  scale: number[];
  offset: number[];
}

type ArrayCtor = typeof Float32Array | typeof Uint8Array | typeof Int16Array | typeof Int32Array;

export const DTYPES: Record<TensorDType, { bytes: number; array: ArrayCtor; min: number; max: number }> = {
  float32: { bytes: 4, array: Float32Array, min: -Infinity, max: Infinity },
  uint8: { bytes: 1, array: Uint8Array, min: 0, max: 255 },
  int16: { bytes: 2, array: Int16Array, min: -32768, max: 32767 },
  int32: { bytes: 4, array: Int32Array, min: -2147483648, max: 2147483647 },
};

/** What `dtype: auto` tries, narrowest first; each holds every value of the ones before it exactly. */
export const AUTO_CANDIDATES: readonly TensorDType[] = ['uint8', 'int16', 'float32'];

export function isTensorDType(value: unknown): value is TensorDType {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

export function dtypeOf(array: TensorArray): TensorDType | null {
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Uint8Array) return 'uint8';
  if (array instanceof Int16Array) return 'int16';
  if (array instanceof Int32Array) return 'int32';
  return null;
}

/** Checks a decode affine against the channel count (one entry per channel, or one for all). */
export function checkDecode(what: string, decode: DecodeAffine | undefined, channels: number): void {
  if (decode === undefined) return;
  for (const key of ['scale', 'offset'] as const) {
    const list = decode[key];
    if (!Array.isArray(list) || (list.length !== channels && list.length !== 1) || list.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      throw new Error(`${what}: decode.${key} must hold ${channels === 1 ? '1' : `1 or ${channels}`} finite numbers, got ${JSON.stringify(list)}`);
    }
  }
  if (decode.scale.some((s) => s === 0)) throw new Error(`${what}: decode.scale must not be 0`);
}

/** The first element that `dtype` (with `decode`) cannot hold exactly, or -1 when all fit. */
function firstLossy(values: Float32Array, dtype: TensorDType, decode: DecodeAffine | undefined, channels: number): number {
  if (dtype === 'float32' && decode === undefined) return -1;
  const { min, max } = DTYPES[dtype];
  const scale = decode?.scale ?? [1];
  const offset = decode?.offset ?? [0];
  const perChannel = scale.length > 1 || offset.length > 1;
  for (let i = 0; i < values.length; i++) {
    const c = perChannel ? i % channels : 0;
    const s = scale[scale.length > 1 ? c : 0]!;
    const o = offset[offset.length > 1 ? c : 0]!;
    const v = values[i]!;
    const q = dtype === 'float32' ? Math.fround((v - o) / s) : Math.round((v - o) / s);
    // Object.is: bit-exact, so -0 and NaN never pass as something else.
    if (!(q >= min && q <= max) || !Object.is(Math.fround(q * s + o), v)) return i;
  }
  return -1;
}

/** Stores float32 `values` as `dtype` (with `decode`); throws naming the element when that would lose a value. */
export function quantize(values: Float32Array, dtype: TensorDType, decode: DecodeAffine | undefined, channels: number, what: string): TensorArray {
  if (dtype === 'float32' && decode === undefined) return values;
  const bad = firstLossy(values, dtype, decode, channels);
  if (bad >= 0) {
    throw new Error(
      `${what}: value ${values[bad]} at element ${bad} cannot be stored as ${dtype}${decode ? ' with the spec\'s decode affine' : ''} without loss; ` +
        "store this tensor as float32, or use dtype: 'auto' to pick the narrowest lossless dtype per sample",
    );
  }
  return encodeStored(values, dtype, decode, channels);
}

function encodeStored(values: Float32Array, dtype: TensorDType, decode: DecodeAffine | undefined, channels: number): TensorArray {
  const out = new DTYPES[dtype].array(values.length);
  const scale = decode?.scale ?? [1];
  const offset = decode?.offset ?? [0];
  for (let i = 0; i < values.length; i++) {
    const c = i % channels;
    const s = scale[scale.length > 1 ? c : 0]!;
    const o = offset[offset.length > 1 ? c : 0]!;
    out[i] = dtype === 'float32' ? (values[i]! - o) / s : Math.round((values[i]! - o) / s);
  }
  return out;
}

/** The narrowest of AUTO_CANDIDATES that holds every value exactly, and the values stored in it. */
export function quantizeAuto(values: Float32Array, decode: DecodeAffine | undefined, channels: number): { dtype: TensorDType; stored: TensorArray } {
  for (const dtype of AUTO_CANDIDATES) {
    if (dtype === 'float32') break;
    if (firstLossy(values, dtype, decode, channels) < 0) return { dtype, stored: encodeStored(values, dtype, decode, channels) };
  }
  // float32 with an affine might still round; float32 without one is always exact.
  if (decode !== undefined && firstLossy(values, 'float32', decode, channels) < 0) return { dtype: 'float32', stored: encodeStored(values, 'float32', decode, channels) };
  if (decode !== undefined) throw new Error('float32 values do not survive the decode affine: drop decode or store them unchanged');
  return { dtype: 'float32', stored: values };
}

/** The wider of two dtypes along AUTO_CANDIDATES (int32 outranks both integer ones). */
export function widerDType(a: TensorDType, b: TensorDType): TensorDType {
  const rank = (d: TensorDType) => ({ uint8: 0, int16: 1, int32: 2, float32: 3 })[d];
  return rank(a) >= rank(b) ? a : b;
}

/**
 * Decodes raw little-endian `bytes` of `dtype` into `out` at `at` as float32 (with `decode`). `bytes` may be
 * unaligned (a view into a record), so wider types are read through a DataView.
 */
export function decodeIntoFloat32(bytes: Uint8Array, dtype: TensorDType, decode: DecodeAffine | undefined, channels: number, out: Float32Array, at: number): void {
  const count = bytes.length / DTYPES[dtype].bytes;
  if (dtype === 'float32' && decode === undefined) {
    new Uint8Array(out.buffer, out.byteOffset + at * 4, count * 4).set(bytes);
    return;
  }
  const scale = decode?.scale ?? [1];
  const offset = decode?.offset ?? [0];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read =
    dtype === 'uint8' ? (i: number) => bytes[i]! : dtype === 'int16' ? (i: number) => view.getInt16(i * 2, true) : dtype === 'int32' ? (i: number) => view.getInt32(i * 4, true) : (i: number) => view.getFloat32(i * 4, true);
  if (scale.length === 1 && offset.length === 1) {
    const s = scale[0]!;
    const o = offset[0]!;
    for (let i = 0; i < count; i++) out[at + i] = read(i) * s + o;
    return;
  }
  for (let i = 0; i < count; i++) {
    const c = i % channels;
    out[at + i] = read(i) * scale[scale.length > 1 ? c : 0]! + offset[offset.length > 1 ? c : 0]!;
  }
}

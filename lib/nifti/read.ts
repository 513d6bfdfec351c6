// Reads NIfTI-1 and NIfTI-2 volumes (.nii and .nii.gz) into float32 voxels with the geometry the header
// declares. nifti-reader-js parses the header fields; it leaves byte order of the voxel data, scl_slope/
// scl_inter and the sform-before-qform choice to us (its own `affine` prefers the qform), so those live here.
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import * as nifti from 'nifti-reader-js';

export type NiftiDatatype =
  | 'uint8'
  | 'int8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'float32'
  | 'float64';

export interface NiftiHeaderFacts {
  qformCode: number;
  sformCode: number;
  /** Quaternion [a, b, c, d] of the qform rotation (a derived from b, c, d as the standard says). */
  quatern: number[];
  /** pixdim[0]: -1 when the qform's third axis is flipped (left-handed), else 1. */
  qfac: number;
  /** qoffset_x, qoffset_y, qoffset_z (in the file's spatial unit, scaled to mm). */
  qoffset: number[];
  /** srow_x, srow_y, srow_z: the three stored rows of the sform (scaled to mm). */
  srow: number[][];
  sclSlope: number;
  sclInter: number;
  description: string;
  /** Whether the voxel data were stored big-endian. */
  bigEndian: boolean;
  /** Byte offset of the voxel data inside the (decompressed) file. */
  voxOffset: number;
}

export interface NiftiVolume {
  file: string;
  version: 1 | 2;
  /** [X, Y, Z] (or more), x fastest in `data`. */
  dims: number[];
  /** pixdim[1..3] in millimetres (converted from metres/microns when xyzt_units says so). */
  spacing: number[];
  /** Row-major 4x4 voxel→world (mm): sform if sform_code > 0, else qform if qform_code > 0, else diag(spacing). */
  affine: number[];
  /** The stored voxel type. */
  datatype: NiftiDatatype;
  /** Voxel values after scl_slope/scl_inter, x fastest. */
  data: Float32Array;
  header: NiftiHeaderFacts;
}

const DATATYPES: Record<number, { name: NiftiDatatype; bytes: number }> = {
  2: { name: 'uint8', bytes: 1 },
  4: { name: 'int16', bytes: 2 },
  8: { name: 'int32', bytes: 4 },
  16: { name: 'float32', bytes: 4 },
  64: { name: 'float64', bytes: 8 },
  256: { name: 'int8', bytes: 1 },
  512: { name: 'uint16', bytes: 2 },
  768: { name: 'uint32', bytes: 4 },
};

/** Multiplier from the header's spatial unit to millimetres (unknown is taken as mm, as most tools do). */
function unitToMm(xyztUnits: number): number {
  switch (xyztUnits & 0x07) {
    case 1:
      return 1000; // metre
    case 3:
      return 0.001; // micron
    default:
      return 1; // mm or unknown
  }
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // A private copy: Node's Buffers may share a pooled ArrayBuffer with unrelated bytes.
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

/** Decompresses a .nii.gz (any file starting with the gzip magic), naming the file when the stream is bad. */
export function gunzipNifti(file: string, raw: Uint8Array): Uint8Array {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(`${file}: not a valid gzip stream (corrupt or truncated download?): ${why}`);
    }
  }
  if (file.endsWith('.gz')) {
    throw new Error(`${file}: not a valid gzip stream (corrupt or truncated download?): the file does not start with the gzip magic bytes 1f 8b`);
  }
  return raw;
}

/** Rotation matrix (row-major 3x3) of the unit quaternion [a, b, c, d]. */
export function quaternionToRotation(a: number, b: number, c: number, d: number): number[][] {
  return [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
}

/** The qform's voxel→world matrix (row-major 4x4), as nifti1_io's quatern_to_mat44 builds it. */
export function qformAffine(quatern: number[], qoffset: number[], spacing: number[], qfac: number): number[] {
  const [a, b, c, d] = quatern as [number, number, number, number];
  const rotation = quaternionToRotation(a, b, c, d);
  const scale = [spacing[0]!, spacing[1]!, spacing[2]! * qfac];
  const affine: number[] = [];
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) affine.push(rotation[row]![col]! * scale[col]!);
    affine.push(qoffset[row]!);
  }
  affine.push(0, 0, 0, 1);
  return affine;
}

/** Whether two volumes' first three dimensions (the voxel grid) are equal. */
export function sameDims3d(a: readonly number[], b: readonly number[]): boolean {
  return a.length >= 3 && b.length >= 3 && a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

/** Reads one NIfTI file (.nii or .nii.gz, NIfTI-1 or -2, either byte order). */
export async function readNifti(file: string): Promise<NiftiVolume> {
  return parseNifti(file, await readNiftiBytes(file));
}

/** The file's bytes as stored (still gzipped), for callers that also digest them; parse with parseNifti. */
export async function readNiftiBytes(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`${file}: cannot read the NIfTI file: ${why}`);
  }
}

/** Parses NIfTI bytes (gzip-compressed or not); `file` names the source in errors and in the result. */
export function parseNifti(file: string, raw: Uint8Array): NiftiVolume {
  const bytes = gunzipNifti(file, raw);
  if (bytes.length < 348) {
    throw new Error(`${file}: not a NIfTI file: only ${bytes.length} bytes, shorter than a NIfTI-1 header (348 bytes)`);
  }
  const buffer = toArrayBuffer(bytes);
  const view = new DataView(buffer);
  const sizeLe = view.getInt32(0, true);
  const sizeBe = view.getInt32(0, false);
  const version: 1 | 2 | null =
    sizeLe === 348 || sizeBe === 348 ? 1 : sizeLe === 540 || sizeBe === 540 ? 2 : null;
  if (version === null) {
    throw new Error(
      `${file}: not a NIfTI file: sizeof_hdr at byte 0 is ${sizeLe} (little-endian) / ${sizeBe} (big-endian), expected 348 (NIfTI-1) or 540 (NIfTI-2)`,
    );
  }
  if (version === 2 && bytes.length < 540) {
    throw new Error(`${file}: truncated NIfTI-2 header: ${bytes.length} bytes, the header needs 540`);
  }
  const magicAt = version === 1 ? 344 : 4;
  const magic = String.fromCharCode(...bytes.subarray(magicAt, magicAt + 3));
  const expected = version === 1 ? ['n+1', 'ni1'] : ['n+2', 'ni2'];
  if (!expected.includes(magic)) {
    throw new Error(
      `${file}: bad NIfTI-${version} magic at byte ${magicAt}: ${JSON.stringify(magic)}, expected "${expected[0]}" (single file)`,
    );
  }
  if (magic.startsWith('ni')) {
    throw new Error(`${file}: this is a .hdr of a .hdr/.img pair (magic ${JSON.stringify(magic)}); convert it to a single .nii/.nii.gz file`);
  }

  let header: nifti.NIFTI1 | nifti.NIFTI2;
  try {
    header = version === 1 ? new nifti.NIFTI1() : new nifti.NIFTI2();
    header.readHeader(buffer);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`${file}: unreadable NIfTI-${version} header: ${why}`);
  }

  const littleEndian = header.littleEndian;
  const rank = header.dims[0]!;
  if (!(rank >= 1 && rank <= 7)) {
    throw new Error(`${file}: invalid dim[0] = ${rank} in the header (must be 1..7)`);
  }
  const dims = header.dims.slice(1, rank + 1).map(Number);
  if (dims.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`${file}: invalid dimensions [${dims.join(', ')}] in the header (each must be a positive integer)`);
  }
  const type = DATATYPES[header.datatypeCode];
  if (!type) {
    throw new Error(
      `${file}: unsupported NIfTI datatype code ${header.datatypeCode}; supported: ${Object.entries(DATATYPES)
        .map(([code, t]) => `${t.name} (${code})`)
        .join(', ')}`,
    );
  }
  const voxels = dims.reduce((product, n) => product * n, 1);
  const voxOffset = Math.round(Number(header.vox_offset));
  const dataStart = Math.max(voxOffset, version === 1 ? 348 : 540);
  const needed = dataStart + voxels * type.bytes;
  if (bytes.length < needed) {
    throw new Error(
      `${file}: voxel data are shorter than the header says: dims [${dims.join(', ')}] of ${type.name} from byte ${dataStart} need ${needed} bytes, the file has ${bytes.length} (truncated file?)`,
    );
  }

  const data = new Float32Array(voxels);
  const read = voxelReader(view, type.name, littleEndian);
  for (let i = 0, offset = dataStart; i < voxels; i++, offset += type.bytes) data[i] = read(offset);

  // scl_slope = 0 (or not finite) means "no scaling" in the standard.
  const slope = Number(header.scl_slope);
  const inter = Number(header.scl_inter);
  const scaled = Number.isFinite(slope) && slope !== 0 && (slope !== 1 || (Number.isFinite(inter) && inter !== 0));
  if (scaled) {
    const offset = Number.isFinite(inter) ? inter : 0;
    for (let i = 0; i < voxels; i++) data[i] = data[i]! * slope + offset;
  }

  const toMm = unitToMm(Number(header.xyzt_units));
  const spacing = [1, 2, 3].map((axis) => {
    const value = Math.abs(Number(header.pixDims[axis] ?? 1));
    return (axis <= rank && value > 0 && Number.isFinite(value) ? value : 1) * toMm;
  });

  const b = Number(header.quatern_b);
  const c = Number(header.quatern_c);
  const d = Number(header.quatern_d);
  const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
  const quatern = [a, b, c, d];
  const qoffset = [header.qoffset_x, header.qoffset_y, header.qoffset_z].map((v) => Number(v) * toMm);
  // NIfTI-2's reader stores the srows in `affine`; NIfTI-1's may have replaced them by the qform, so re-read.
  const srow = version === 1 ? readSrowNifti1(view, littleEndian) : header.affine.slice(0, 3).map((row) => row.map(Number));
  const srowMm = srow.map((row) => row.map((v) => v * toMm));
  const qfac = Number(header.pixDims[0]) < 0 ? -1 : 1;
  const qformCode = Number(header.qform_code);
  const sformCode = Number(header.sform_code);

  let affine: number[];
  if (sformCode > 0) affine = [...srowMm.flat(), 0, 0, 0, 1];
  else if (qformCode > 0) affine = qformAffine(quatern, qoffset, spacing, qfac);
  else affine = [spacing[0]!, 0, 0, 0, 0, spacing[1]!, 0, 0, 0, 0, spacing[2]!, 0, 0, 0, 0, 1];

  return {
    file,
    version,
    dims,
    spacing,
    affine,
    datatype: type.name,
    data,
    header: {
      qformCode,
      sformCode,
      quatern,
      qfac,
      qoffset,
      srow: srowMm,
      sclSlope: slope,
      sclInter: inter,
      description: header.description,
      bigEndian: !littleEndian,
      voxOffset: dataStart,
    },
  };
}

function readSrowNifti1(view: DataView, littleEndian: boolean): number[][] {
  const rows: number[][] = [];
  for (let row = 0; row < 3; row++) {
    const values: number[] = [];
    for (let col = 0; col < 4; col++) values.push(view.getFloat32(280 + (row * 4 + col) * 4, littleEndian));
    rows.push(values);
  }
  return rows;
}

function voxelReader(view: DataView, type: NiftiDatatype, littleEndian: boolean): (offset: number) => number {
  switch (type) {
    case 'uint8':
      return (offset) => view.getUint8(offset);
    case 'int8':
      return (offset) => view.getInt8(offset);
    case 'int16':
      return (offset) => view.getInt16(offset, littleEndian);
    case 'uint16':
      return (offset) => view.getUint16(offset, littleEndian);
    case 'int32':
      return (offset) => view.getInt32(offset, littleEndian);
    case 'uint32':
      return (offset) => view.getUint32(offset, littleEndian);
    case 'float32':
      return (offset) => view.getFloat32(offset, littleEndian);
    case 'float64':
      return (offset) => view.getFloat64(offset, littleEndian);
  }
}

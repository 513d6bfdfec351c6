// Writes NIfTI-1 single files (.nii, or .nii.gz when the name ends so) with both the sform and the qform
// set from one affine, so a prediction written here overlays its source scan in any viewer.
import { writeFileAtomic } from '../atomic.js';
import { gzipSync } from 'node:zlib';

export type NiftiWriteDatatype = 'uint8' | 'int16' | 'float32';

export interface NiftiWriteInput {
  /** [X, Y, Z] (x fastest in `data`). */
  dims: number[];
  /** Voxel size in mm, [X, Y, Z]. Written to pixdim and used as the qform's scales. */
  spacing: number[];
  /** Row-major 4x4 voxel→world in mm (a 16-number array). */
  affine: number[];
  datatype: NiftiWriteDatatype;
  /** Real values; integer types are rounded (after undoing sclSlope/sclInter) and must fit the type. */
  data: ArrayLike<number>;
  /** Optional scaling stored in the header: value = stored * sclSlope + sclInter. */
  sclSlope?: number;
  sclInter?: number;
  /** Up to 79 ASCII characters for the descrip field. */
  description?: string;
}

const TYPE_INFO: Record<NiftiWriteDatatype, { code: number; bytes: number; min: number; max: number }> = {
  uint8: { code: 2, bytes: 1, min: 0, max: 255 },
  int16: { code: 4, bytes: 2, min: -32768, max: 32767 },
  float32: { code: 16, bytes: 4, min: -Infinity, max: Infinity },
};

/**
 * The qform parameters of an affine, as nifti1_io's nifti_mat44_to_quatern derives them: quaternion
 * [a, b, c, d] of the rotation, qfac (-1 when the axes are left-handed) and the column lengths (voxel size).
 */
export function affineToQuaternion(affine: number[]): { quatern: number[]; qfac: number; scales: number[]; offset: number[] } {
  if (affine.length !== 16) throw new Error(`affine must have 16 numbers (row-major 4x4), got ${affine.length}`);
  const m = (row: number, col: number): number => affine[row * 4 + col]!;
  const columns = [0, 1, 2].map((col) => [m(0, col), m(1, col), m(2, col)]);
  const scales = columns.map((v) => Math.hypot(v[0]!, v[1]!, v[2]!));
  const r = columns.map((v, col) => (scales[col]! > 0 ? v.map((x) => x / scales[col]!) : [col === 0 ? 1 : 0, col === 1 ? 1 : 0, col === 2 ? 1 : 0]));
  // r[col][row]: the rotation's columns. Its determinant decides the handedness.
  const det =
    r[0]![0]! * (r[1]![1]! * r[2]![2]! - r[2]![1]! * r[1]![2]!) -
    r[1]![0]! * (r[0]![1]! * r[2]![2]! - r[2]![1]! * r[0]![2]!) +
    r[2]![0]! * (r[0]![1]! * r[1]![2]! - r[1]![1]! * r[0]![2]!);
  let qfac = 1;
  if (det < 0) {
    qfac = -1;
    r[2] = r[2]!.map((x) => -x);
  }
  const R = (row: number, col: number): number => r[col]![row]!; // 0-based row, col
  let a = R(0, 0) + R(1, 1) + R(2, 2) + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (R(2, 1) - R(1, 2))) / a;
    c = (0.25 * (R(0, 2) - R(2, 0))) / a;
    d = (0.25 * (R(1, 0) - R(0, 1))) / a;
  } else {
    const xd = 1 + R(0, 0) - (R(1, 1) + R(2, 2));
    const yd = 1 + R(1, 1) - (R(0, 0) + R(2, 2));
    const zd = 1 + R(2, 2) - (R(0, 0) + R(1, 1));
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (R(0, 1) + R(1, 0))) / b;
      d = (0.25 * (R(0, 2) + R(2, 0))) / b;
      a = (0.25 * (R(2, 1) - R(1, 2))) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (R(0, 1) + R(1, 0))) / c;
      d = (0.25 * (R(1, 2) + R(2, 1))) / c;
      a = (0.25 * (R(0, 2) - R(2, 0))) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (R(0, 2) + R(2, 0))) / d;
      c = (0.25 * (R(1, 2) + R(2, 1))) / d;
      a = (0.25 * (R(1, 0) - R(0, 1))) / d;
    }
    if (a < 0) {
      a = -a;
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { quatern: [a, b, c, d], qfac, scales, offset: [m(0, 3), m(1, 3), m(2, 3)] };
}

/** The uncompressed bytes of a little-endian NIfTI-1 single file (header, empty extension flag, voxels). */
export function encodeNifti(input: NiftiWriteInput): Uint8Array {
  const { dims, spacing, affine, datatype, data } = input;
  const type = TYPE_INFO[datatype];
  if (!type) throw new Error(`writeNifti: unsupported datatype ${String(datatype)}; use uint8, int16 or float32`);
  if (dims.length < 1 || dims.length > 7 || dims.some((n) => !Number.isInteger(n) || n < 1 || n > 32767)) {
    throw new Error(`writeNifti: dims must be 1..7 positive integers ≤ 32767, got [${dims.join(', ')}]`);
  }
  const voxels = dims.reduce((product, n) => product * n, 1);
  if (data.length !== voxels) {
    throw new Error(`writeNifti: data has ${data.length} values but dims [${dims.join(', ')}] need ${voxels}`);
  }
  if (spacing.length < Math.min(3, dims.length) || spacing.some((s) => !(s > 0) || !Number.isFinite(s))) {
    throw new Error(`writeNifti: spacing must give a positive size per spatial axis, got [${spacing.join(', ')}]`);
  }
  const slope = input.sclSlope ?? 1;
  const inter = input.sclInter ?? 0;
  if (!(slope !== 0 && Number.isFinite(slope) && Number.isFinite(inter))) {
    throw new Error(`writeNifti: sclSlope must be finite and non-zero and sclInter finite (got ${slope}, ${inter})`);
  }
  const { quatern, qfac, offset } = affineToQuaternion(affine);

  const voxOffset = 352;
  const bytes = new Uint8Array(voxOffset + voxels * type.bytes);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 348, true);
  bytes[38] = 'r'.charCodeAt(0);
  view.setInt16(40, dims.length, true);
  for (let axis = 1; axis <= 7; axis++) view.setInt16(40 + axis * 2, dims[axis - 1] ?? 1, true);
  view.setInt16(70, type.code, true);
  view.setInt16(72, type.bytes * 8, true);
  view.setFloat32(76, qfac, true);
  for (let axis = 1; axis <= 7; axis++) view.setFloat32(76 + axis * 4, axis <= 3 ? (spacing[axis - 1] ?? 1) : 1, true);
  view.setFloat32(108, voxOffset, true);
  view.setFloat32(112, slope, true);
  view.setFloat32(116, inter, true);
  bytes[123] = 2 | 8; // spatial unit mm, temporal unit seconds
  const description = (input.description ?? 'flow').slice(0, 79);
  for (let i = 0; i < description.length; i++) bytes[148 + i] = description.charCodeAt(i) & 0x7f;
  view.setInt16(252, 1, true); // qform_code: scanner anatomical
  view.setInt16(254, 1, true); // sform_code: scanner anatomical
  view.setFloat32(256, quatern[1]!, true);
  view.setFloat32(260, quatern[2]!, true);
  view.setFloat32(264, quatern[3]!, true);
  view.setFloat32(268, offset[0]!, true);
  view.setFloat32(272, offset[1]!, true);
  view.setFloat32(276, offset[2]!, true);
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 4; col++) view.setFloat32(280 + (row * 4 + col) * 4, affine[row * 4 + col]!, true);
  }
  bytes.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  // bytes 348..351 stay 0: no extensions.

  if (datatype === 'float32') {
    for (let i = 0; i < voxels; i++) view.setFloat32(voxOffset + i * 4, (data[i]! - inter) / slope, true);
  } else {
    for (let i = 0; i < voxels; i++) {
      const stored = Math.round((data[i]! - inter) / slope);
      if (!(stored >= type.min && stored <= type.max)) {
        throw new Error(`writeNifti: value ${data[i]} at voxel ${i} does not fit ${datatype} (stored ${stored}); use float32 or a scale`);
      }
      if (datatype === 'uint8') bytes[voxOffset + i] = stored;
      else view.setInt16(voxOffset + i * 2, stored, true);
    }
  }
  return bytes;
}

/** Writes a NIfTI-1 file atomically (lib/atomic.ts: temp, fsync, rename); gzip-compressed when `file` ends with ".gz". */
export async function writeNifti(file: string, input: NiftiWriteInput): Promise<void> {
  let bytes = encodeNifti(input);
  // Node's gzip header carries no timestamp, so equal volumes give byte-identical files.
  if (file.endsWith('.gz')) bytes = gzipSync(bytes, { level: 9 });
  await writeFileAtomic(file, bytes);
}

// Test-only NIfTI encoders written from the header layout in nifti1.h / nifti2.h, independent of
// lib/nifti/write.ts, so the reader is checked against files it did not produce itself: any datatype,
// either byte order, scaling, header extensions, and NIfTI-2.

export interface RawNiftiOptions {
  dims: number[];
  /** NIfTI datatype code: 2 uint8, 4 int16, 8 int32, 16 float32, 64 float64, 256 int8, 512 uint16, 768 uint32. */
  datatypeCode: number;
  /** Stored values (before scaling). */
  values: ArrayLike<number>;
  littleEndian?: boolean;
  pixdim?: number[]; // [qfac, dx, dy, dz]
  sclSlope?: number;
  sclInter?: number;
  xyztUnits?: number;
  qformCode?: number;
  sformCode?: number;
  quatern?: [number, number, number]; // b, c, d
  qoffset?: [number, number, number];
  srow?: number[][]; // 3 rows of 4
  /** Extension payloads (each padded so esize is a multiple of 16). */
  extensions?: { code: number; data: Uint8Array }[];
}

const BYTES: Record<number, number> = { 2: 1, 4: 2, 8: 4, 16: 4, 64: 8, 256: 1, 512: 2, 768: 4 };

function writeValue(view: DataView, offset: number, code: number, value: number, le: boolean): void {
  switch (code) {
    case 2: view.setUint8(offset, value); break;
    case 256: view.setInt8(offset, value); break;
    case 4: view.setInt16(offset, value, le); break;
    case 512: view.setUint16(offset, value, le); break;
    case 8: view.setInt32(offset, value, le); break;
    case 768: view.setUint32(offset, value, le); break;
    case 16: view.setFloat32(offset, value, le); break;
    case 64: view.setFloat64(offset, value, le); break;
    default: throw new Error(`test helper: datatype ${code} not supported`);
  }
}

function extensionBlock(extensions: { code: number; data: Uint8Array }[] | undefined, le: boolean): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([extensions?.length ? 1 : 0, 0, 0, 0])];
  for (const ext of extensions ?? []) {
    const esize = Math.ceil((8 + ext.data.length) / 16) * 16;
    const block = new Uint8Array(esize);
    const view = new DataView(block.buffer);
    view.setInt32(0, esize, le);
    view.setInt32(4, ext.code, le);
    block.set(ext.data, 8);
    parts.push(block);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function voxelBytes(options: RawNiftiOptions, le: boolean): Uint8Array {
  const size = BYTES[options.datatypeCode]!;
  const out = new Uint8Array(options.values.length * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < options.values.length; i++) writeValue(view, i * size, options.datatypeCode, options.values[i]!, le);
  return out;
}

export function rawNifti1(options: RawNiftiOptions): Uint8Array {
  const le = options.littleEndian ?? true;
  const ext = extensionBlock(options.extensions, le);
  const voxOffset = 348 + ext.length;
  const data = voxelBytes(options, le);
  const bytes = new Uint8Array(voxOffset + data.length);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 348, le);
  view.setInt16(40, options.dims.length, le);
  for (let i = 0; i < 7; i++) view.setInt16(42 + i * 2, options.dims[i] ?? 1, le);
  view.setInt16(70, options.datatypeCode, le);
  view.setInt16(72, BYTES[options.datatypeCode]! * 8, le);
  const pixdim = options.pixdim ?? [1, 1, 1, 1];
  for (let i = 0; i < 8; i++) view.setFloat32(76 + i * 4, pixdim[i] ?? 1, le);
  view.setFloat32(108, voxOffset, le);
  view.setFloat32(112, options.sclSlope ?? 0, le);
  view.setFloat32(116, options.sclInter ?? 0, le);
  bytes[123] = options.xyztUnits ?? 2;
  view.setInt16(252, options.qformCode ?? 0, le);
  view.setInt16(254, options.sformCode ?? 0, le);
  const q = options.quatern ?? [0, 0, 0];
  const o = options.qoffset ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    view.setFloat32(256 + i * 4, q[i]!, le);
    view.setFloat32(268 + i * 4, o[i]!, le);
  }
  const srow = options.srow ?? [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) view.setFloat32(280 + (r * 4 + c) * 4, srow[r]![c]!, le);
  bytes.set([0x6e, 0x2b, 0x31, 0], 344);
  bytes.set(ext, 348);
  bytes.set(data, voxOffset);
  return bytes;
}

export function rawNifti2(options: RawNiftiOptions): Uint8Array {
  const le = options.littleEndian ?? true;
  const ext = extensionBlock(options.extensions, le);
  const voxOffset = 540 + ext.length;
  const data = voxelBytes(options, le);
  const bytes = new Uint8Array(voxOffset + data.length);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 540, le);
  bytes.set([0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], 4);
  view.setInt16(12, options.datatypeCode, le);
  view.setInt16(14, BYTES[options.datatypeCode]! * 8, le);
  view.setBigInt64(16, BigInt(options.dims.length), le);
  for (let i = 0; i < 7; i++) view.setBigInt64(24 + i * 8, BigInt(options.dims[i] ?? 1), le);
  const pixdim = options.pixdim ?? [1, 1, 1, 1];
  for (let i = 0; i < 8; i++) view.setFloat64(104 + i * 8, pixdim[i] ?? 1, le);
  view.setBigInt64(168, BigInt(voxOffset), le);
  view.setFloat64(176, options.sclSlope ?? 0, le);
  view.setFloat64(184, options.sclInter ?? 0, le);
  view.setInt32(344, options.qformCode ?? 0, le);
  view.setInt32(348, options.sformCode ?? 0, le);
  const q = options.quatern ?? [0, 0, 0];
  const o = options.qoffset ?? [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    view.setFloat64(352 + i * 8, q[i]!, le);
    view.setFloat64(376 + i * 8, o[i]!, le);
  }
  const srow = options.srow ?? [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) view.setFloat64(400 + (r * 4 + c) * 8, srow[r]![c]!, le);
  view.setInt32(500, options.xyztUnits ?? 2, le);
  bytes.set(ext, 540);
  bytes.set(data, voxOffset);
  return bytes;
}

// Palette (indexed-colour) PNG masks read as their indices: PASCAL VOC-style label images store the class as
// the palette index and colour it for viewing, so decoding through the colours (as libvips does) would give
// luminance values that mean nothing. Non-interlaced PNGs of colour type 3 at bit depth 1, 2, 4 or 8.
import { inflateSync } from 'node:zlib';
import type { RawImage } from './index.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** True when `bytes` is a PNG whose IHDR says colour type 3 (palette). */
export function isPalettePng(bytes: Uint8Array): boolean {
  return bytes.length > 33 && SIGNATURE.every((b, i) => bytes[i] === b) && bytes[25] === 3;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The palette indices of an indexed PNG, one byte per pixel. */
export function decodePaletteIndices(bytes: Uint8Array, label: string): RawImage {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (what: string): never => {
    throw new Error(`${label}: ${what}`);
  };
  if (!isPalettePng(bytes)) fail('not a palette PNG');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24]!;
  if (![1, 2, 4, 8].includes(depth)) fail(`palette PNG bit depth ${depth} is invalid`);
  if (bytes[28] !== 0) fail('interlaced palette PNGs are not supported; save the mask without interlacing');
  const parts: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === 'IDAT') parts.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === 'IEND') break;
    at += 12 + length;
  }
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(parts));
  } catch (error) {
    return fail(`corrupt image data (${(error as Error).message})`);
  }
  const stride = Math.ceil((width * depth) / 8);
  if (raw.length < (stride + 1) * height) fail(`image data hold ${raw.length} bytes, ${width}x${height} at ${depth} bits need ${(stride + 1) * height} (truncated?)`);
  const rows = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x > 0 ? out[x - 1]! : 0, b = prev[x]!, c = x > 0 ? prev[x - 1]! : 0;
      const predictor = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : filter === 4 ? paeth(a, b, c) : fail(`unknown PNG filter ${filter} in row ${y}`);
      out[x] = (line[x]! + predictor) & 0xff;
    }
  }
  const data = new Uint8Array(width * height);
  const perByte = 8 / depth;
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = rows[y * stride + Math.floor(x / perByte)]!;
      data[y * width + x] = depth === 8 ? byte : (byte >> (8 - depth * (1 + (x % perByte)))) & mask;
    }
  }
  return { data, width, height, channels: 1 };
}

// A small BMP reader: libvips (sharp) reads JPEG, PNG, GIF, TIFF and WebP but not Windows bitmaps, which some
// 2D datasets ship. Uncompressed 8-bit (palette), 24-bit and 32-bit (BI_RGB, or BI_BITFIELDS with the usual
// byte masks), bottom-up or top-down rows; errors say what the header holds.
import type { RawImage } from './index.js';

export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

/** Decodes a BMP to interleaved 8-bit pixels: grey (1 channel) for a grey palette, else RGB. */
export function decodeBmp(bytes: Uint8Array, label: string): RawImage {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (what: string): never => {
    throw new Error(`${label}: ${what}`);
  };
  if (bytes.length < 54) fail(`a ${bytes.length}-byte file is too short for a BMP header`);
  const dataOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(14, true);
  if (headerSize < 40) fail(`BMP core headers (${headerSize} bytes) are not supported; save as a Windows 3+ BMP or PNG`);
  const width = view.getInt32(18, true);
  const rawHeight = view.getInt32(22, true);
  const bits = view.getUint16(28, true);
  const compression = view.getUint32(30, true);
  const height = Math.abs(rawHeight);
  const topDown = rawHeight < 0;
  if (width < 1 || height < 1) fail(`BMP size ${width}x${rawHeight} is invalid`);
  if (!(compression === 0 || (compression === 3 && bits === 32))) fail(`BMP compression ${compression} (RLE or other) is not supported; save uncompressed or as PNG`);
  if (![8, 24, 32].includes(bits)) fail(`${bits}-bit BMPs are not supported (8, 24 and 32 are)`);
  const stride = Math.ceil((width * bits) / 32) * 4;
  if (dataOffset + stride * height > bytes.length) fail(`pixel data end at byte ${dataOffset + stride * height}, the file has ${bytes.length} (truncated?)`);
  let palette: Uint8Array | null = null;
  let grey = false;
  if (bits === 8) {
    const colours = view.getUint32(46, true) || 256;
    const start = 14 + headerSize;
    palette = bytes.subarray(start, start + colours * 4);
    grey = true;
    for (let i = 0; i < colours; i++) if (palette[i * 4] !== palette[i * 4 + 1] || palette[i * 4 + 1] !== palette[i * 4 + 2]) grey = false;
  }
  const channels = grey ? 1 : 3;
  const data = new Uint8Array(width * height * channels);
  for (let row = 0; row < height; row++) {
    const src = dataOffset + (topDown ? row : height - 1 - row) * stride;
    for (let x = 0; x < width; x++) {
      const o = (row * width + x) * channels;
      if (palette !== null) {
        const p = bytes[src + x]! * 4;
        if (grey) data[o] = palette[p]!;
        else [data[o], data[o + 1], data[o + 2]] = [palette[p + 2]!, palette[p + 1]!, palette[p]!];
      } else {
        const at = src + x * (bits / 8);
        // Stored BGR(A).
        [data[o], data[o + 1], data[o + 2]] = [bytes[at + 2]!, bytes[at + 1]!, bytes[at]!];
      }
    }
  }
  return { data, width, height, channels };
}

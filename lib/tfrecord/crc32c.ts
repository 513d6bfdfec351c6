// CRC32C (Castagnoli) and TFRecord's masked form. hash-wasm's WebAssembly CRC with the Castagnoli
// polynomial runs at ~1.7 GB/s here (bench/tfrecord.ts), well above disk speed, so a native addon is
// not needed. Node's zlib.crc32 is the plain CRC-32 polynomial and would be wrong here.
import { createCRC32 } from 'hash-wasm';

const CASTAGNOLI_REVERSED = 0x82f63b78;

// Creating the hasher instantiates WebAssembly (async); after that init/update/digest are synchronous,
// so one shared instance gives a synchronous crc32c() to the hot record loops.
const hasher = await createCRC32(CASTAGNOLI_REVERSED);

/** CRC32C of `data` as an unsigned 32-bit number. crc32c("123456789") = 0xE3069283. */
export function crc32c(data: Uint8Array): number {
  hasher.init();
  hasher.update(data);
  const d = hasher.digest('binary');
  return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
}

const MASK_DELTA = 0xa282ead8;

/** TFRecord's masked CRC: rotate right by 15 bits and add a constant (mod 2^32). */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/** Inverse of maskCrc. */
export function unmaskCrc(masked: number): number {
  const rotated = (masked - MASK_DELTA) >>> 0;
  return ((rotated >>> 17) | (rotated << 15)) >>> 0;
}

/** masked_crc32c(data), as stored in TFRecord framing. */
export function maskedCrc32c(data: Uint8Array): number {
  return maskCrc(crc32c(data));
}

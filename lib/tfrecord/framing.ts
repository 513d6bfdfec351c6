// TFRecord framing shared by writer and reader:
//   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
import { maskedCrc32c } from './crc32c.js';

export type Compression = 'none' | 'gzip' | 'zlib';

export const HEADER_BYTES = 12;
export const FOOTER_BYTES = 4;

/** What to do about a bad record, appended to every TFRecordError. */
export const CORRUPT_ADVICE = 'the file is corrupt or was not written completely; re-run the stage that wrote it';

/** A record that cannot be read: names the file, the record's index and its byte offset. */
export class TFRecordError extends Error {
  override name = 'TFRecordError';
  constructor(
    readonly file: string,
    readonly index: number,
    readonly offset: number,
    readonly problem: string,
    advice: string = CORRUPT_ADVICE,
  ) {
    super(`${file}: record ${index} at byte ${offset}: ${problem}; ${advice}`);
  }
}

/** The 12-byte header of a record of `length` data bytes. */
export function frameHeader(length: number): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setBigUint64(0, BigInt(length), true);
  view.setUint32(8, maskedCrc32c(header.subarray(0, 8)), true);
  return header;
}

/** The 4-byte footer (masked CRC of the data). */
export function frameFooter(data: Uint8Array): Uint8Array {
  const footer = new Uint8Array(FOOTER_BYTES);
  new DataView(footer.buffer).setUint32(0, maskedCrc32c(data), true);
  return footer;
}

/** One whole framed record (header + data + footer) in a new array. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + data.length + FOOTER_BYTES);
  out.set(frameHeader(data.length), 0);
  out.set(data, HEADER_BYTES);
  out.set(frameFooter(data), HEADER_BYTES + data.length);
  return out;
}

/** File name ending for a compression. */
export function compressionExtension(compression: Compression): string {
  return compression === 'gzip' ? '.gz' : compression === 'zlib' ? '.zz' : '';
}

const SHARD_NAME = /^part-(\d{5,})-of-(\d{5,})\.tfrecord(\.gz|\.zz)?$/;

/** `part-00000-of-00004.tfrecord[.gz|.zz]` */
export function shardName(index: number, total: number, compression: Compression): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `part-${pad(index)}-of-${pad(total)}.tfrecord${compressionExtension(compression)}`;
}

/** Parses a shard file name; null when it is not one. */
export function parseShardName(name: string): { index: number; total: number; compression: Compression } | null {
  const m = SHARD_NAME.exec(name);
  if (!m) return null;
  const compression: Compression = m[3] === '.gz' ? 'gzip' : m[3] === '.zz' ? 'zlib' : 'none';
  return { index: Number(m[1]), total: Number(m[2]), compression };
}

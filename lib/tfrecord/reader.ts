// Streaming TFRecord reader: pulls ~1 MiB chunks (through gunzip/inflate when compressed), verifies both
// CRCs of every record, and reports file, record index and byte offset for anything wrong. Memory holds
// one chunk plus the current record.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import zlib from 'node:zlib';
import { maskedCrc32c } from './crc32c.js';
import { FOOTER_BYTES, HEADER_BYTES, TFRecordError, parseShardName, type Compression } from './framing.js';

const CHUNK_BYTES = 1 << 20;

export interface ReadOptions {
  /** `auto` (default): sniff the first bytes (plain framing with a valid length CRC, gzip magic, zlib header). */
  compression?: 'auto' | Compression;
  /** Skip CRC checks (only where speed matters more than safety; tfrecord.read never does). */
  verify?: boolean;
}

export interface RecordView {
  /** The record's data. May be a view into a larger buffer: copy it to keep it beyond the next record. */
  data: Uint8Array;
  /** 0-based record number in the file. */
  index: number;
  /** Byte offset of the record's header in the (decompressed) stream. */
  offset: number;
}

/** Sniffs a file's compression from its first bytes. */
export async function detectCompression(file: string): Promise<Compression> {
  const handle = await fsp.open(file, 'r');
  try {
    const head = new Uint8Array(HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEADER_BYTES, 0);
    if (bytesRead === 0) return 'none';
    // A plain TFRecord starts with a length whose masked CRC follows: a chance match is 1 in 2^32,
    // which settles the ambiguous cases (a length whose low bytes look like 1f 8b or a zlib header).
    if (bytesRead === HEADER_BYTES) {
      const stored = new DataView(head.buffer).getUint32(8, true);
      if (maskedCrc32c(head.subarray(0, 8)) === stored) return 'none';
    }
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead >= 2 && (head[0]! & 0x0f) === 8 && ((head[0]! << 8) | head[1]!) % 31 === 0) return 'zlib';
    return 'none';
  } finally {
    await handle.close();
  }
}

function openStream(file: string, compression: Compression): { chunks: AsyncIterable<Buffer>; close(): void } {
  const raw = fs.createReadStream(file, { highWaterMark: CHUNK_BYTES });
  if (compression === 'none') return { chunks: raw, close: () => raw.destroy() };
  const inflater = compression === 'gzip' ? zlib.createGunzip({ chunkSize: 256 * 1024 }) : zlib.createInflate({ chunkSize: 256 * 1024 });
  raw.on('error', (err) => inflater.destroy(err));
  return {
    chunks: raw.pipe(inflater),
    close: () => {
      inflater.destroy();
      raw.destroy();
    },
  };
}

/**
 * Holds the unread tail of the stream and hands out exact byte counts. `take` returns a view when the
 * bytes lie inside one chunk and a copy when they span chunks.
 */
class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // read position in chunks[0]
  available = 0;
  /** Bytes consumed from the stream so far. */
  consumed = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  take(n: number): Uint8Array {
    if (n > this.available) throw new Error('internal: take past available');
    this.available -= n;
    this.consumed += n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first && first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(n - at, chunk.length - this.head);
      out.set(chunk.subarray(this.head, this.head + part), at);
      at += part;
      this.head += part;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}

/** Little-endian uint32 at `at` (no DataView allocation per record). */
function readUint32LE(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** Streams the records of one TFRecord file, verifying both CRCs (unless `verify: false`). */
export async function* readRecords(file: string, options: ReadOptions = {}): AsyncGenerator<RecordView> {
  const requested = options.compression ?? 'auto';
  const compression = requested === 'auto' ? await detectCompression(file) : requested;
  const verify = options.verify ?? true;
  const queue = new ChunkQueue();
  const stream = openStream(file, compression);
  const source = stream.chunks[Symbol.asyncIterator]();
  let ended = false;
  let index = 0;
  let recordStart = 0;

  const fill = async (need: number): Promise<boolean> => {
    while (queue.available < need && !ended) {
      let next: IteratorResult<Buffer>;
      try {
        next = await source.next();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
          throw new Error(`${file}: cannot read: ${(err as Error).message}`);
        }
        const what = compression === 'none' ? 'read failed' : `${compression} stream is damaged (${(err as Error).message})`;
        throw new TFRecordError(file, index, recordStart, what);
      }
      if (next.done) ended = true;
      else queue.push(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
    }
    return queue.available >= need;
  };

  try {
    while (true) {
      recordStart = queue.consumed;
      // fill() only when the queue runs short: an await per record would cost more than the CRCs.
      if (queue.available < HEADER_BYTES && !(await fill(HEADER_BYTES))) {
        if (queue.available === 0) return;
        throw new TFRecordError(file, index, recordStart, `truncated record header (${queue.available} of ${HEADER_BYTES} bytes)`);
      }
      const header = queue.take(HEADER_BYTES);
      if (verify && maskedCrc32c(header.subarray(0, 8)) !== readUint32LE(header, 8)) {
        throw new TFRecordError(file, index, recordStart, 'length CRC mismatch (the length field is damaged)');
      }
      const lengthHigh = readUint32LE(header, 4);
      if (lengthHigh !== 0 || readUint32LE(header, 0) > 0x7fffffff) {
        const length64 = (BigInt(lengthHigh) << 32n) | BigInt(readUint32LE(header, 0));
        throw new TFRecordError(file, index, recordStart, `record length ${length64} is implausible`);
      }
      const length = readUint32LE(header, 0);
      if (queue.available < length + FOOTER_BYTES && !(await fill(length + FOOTER_BYTES))) {
        throw new TFRecordError(
          file,
          index,
          recordStart,
          `truncated record: the header announces ${length} data bytes + ${FOOTER_BYTES} CRC bytes but only ${queue.available} follow`,
        );
      }
      const data = queue.take(length);
      const footer = queue.take(FOOTER_BYTES);
      if (verify && maskedCrc32c(data) !== readUint32LE(footer, 0)) {
        throw new TFRecordError(file, index, recordStart, 'data CRC mismatch (the record\'s bytes are damaged)');
      }
      yield { data, index, offset: recordStart };
      index++;
    }
  } finally {
    stream.close();
  }
}

/** Counts records and framed bytes of a file while verifying it. */
export async function verifyRecordFile(file: string, options: ReadOptions = {}): Promise<{ records: number; framedBytes: number }> {
  let records = 0;
  let framedBytes = 0;
  for await (const r of readRecords(file, options)) {
    records++;
    framedBytes += HEADER_BYTES + r.data.length + FOOTER_BYTES;
  }
  return { records, framedBytes };
}

/**
 * The shard files of a folder (`part-XXXXX-of-YYYYY.tfrecord[.gz|.zz]`) in order, checked to be one
 * complete set: same total, same compression, every index present.
 */
export async function listShards(dir: string): Promise<Array<{ file: string; compression: Compression }>> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    throw new Error(`${dir}: cannot list the shards folder: ${(err as Error).message}`);
  }
  const shards = names
    .map((name) => ({ name, parsed: parseShardName(name) }))
    .filter((s): s is { name: string; parsed: NonNullable<ReturnType<typeof parseShardName>> } => s.parsed !== null)
    .sort((a, b) => a.parsed.index - b.parsed.index);
  if (shards.length === 0) throw new Error(`${dir}: no part-XXXXX-of-YYYYY.tfrecord shards; is this a tfrecord.write output?`);
  const total = shards[0]!.parsed.total;
  shards.forEach((s, i) => {
    if (s.parsed.total !== total || s.parsed.index !== i || s.parsed.compression !== shards[0]!.parsed.compression) {
      throw new Error(`${dir}: shards do not form one complete set of ${total} (found ${shards.map((x) => x.name).join(', ')}); re-run the stage that wrote them`);
    }
  });
  if (shards.length !== total) {
    throw new Error(`${dir}: ${shards.length} of ${total} shards present; re-run the stage that wrote them`);
  }
  return shards.map((s) => ({ file: s.name, compression: s.parsed.compression }));
}

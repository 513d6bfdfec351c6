// Streaming TFRecord writers. Records are framed and buffered into ~1 MiB writes; each write awaits the
// file (or the zlib stream's drain), so memory stays flat however many records pass through. Files carry a
// temporary name until closed, so a crash never leaves something that looks complete.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { FOOTER_BYTES, HEADER_BYTES, shardName, type Compression } from './framing.js';
import { maskedCrc32c } from './crc32c.js';

const BUFFER_BYTES = 1 << 20;

/** Where framed bytes go: a plain file, or a zlib stream over a file. */
interface ByteSink {
  /** True when the sink may still read a chunk after write() resolved (so the chunk must not be reused). */
  readonly keepsChunks: boolean;
  write(chunk: Uint8Array): Promise<void>;
  end(): Promise<void>;
  destroy(): Promise<void>;
}

class FileSink implements ByteSink {
  readonly keepsChunks = false;
  constructor(private readonly handle: fsp.FileHandle) {}
  async write(chunk: Uint8Array): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, done, chunk.length - done);
      done += bytesWritten;
    }
  }
  async end(): Promise<void> {
    await this.handle.sync();
    await this.handle.close();
  }
  async destroy(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

class ZlibSink implements ByteSink {
  readonly keepsChunks = true;
  private failure: Error | null = null;
  private readonly finished: Promise<void>;
  constructor(
    private readonly compressor: zlib.Gzip | zlib.Deflate,
    private readonly file: fs.WriteStream,
  ) {
    compressor.pipe(file);
    const onError = (err: Error) => {
      this.failure ??= err;
    };
    compressor.on('error', onError);
    file.on('error', onError);
    this.finished = new Promise((resolve, reject) => {
      file.on('close', () => (this.failure ? reject(this.failure) : resolve()));
      file.on('error', reject);
      compressor.on('error', reject);
    });
    this.finished.catch(() => undefined);
  }
  async write(chunk: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.compressor.write(chunk)) await Promise.race([once(this.compressor, 'drain'), this.finished]);
    if (this.failure) throw this.failure;
  }
  async end(): Promise<void> {
    this.compressor.end();
    await this.finished;
  }
  async destroy(): Promise<void> {
    this.compressor.destroy();
    this.file.destroy();
    await this.finished.catch(() => undefined);
  }
}

async function openSink(file: string, compression: Compression): Promise<ByteSink> {
  if (compression === 'none') return new FileSink(await fsp.open(file, 'w'));
  const out = fs.createWriteStream(file, { highWaterMark: BUFFER_BYTES });
  await once(out, 'open');
  // Deterministic output: Node's gzip header has mtime 0 and no name, so equal input gives equal bytes.
  const compressor = compression === 'gzip' ? zlib.createGzip({ chunkSize: 64 * 1024 }) : zlib.createDeflate({ chunkSize: 64 * 1024 });
  return new ZlibSink(compressor, out);
}

function putUint32LE(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

/** A unique temporary name beside `file`, hidden and marked `.tmp`. */
function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes framed records to one file. The file appears under its name only after `close()`; until then
 * it is a `.tmp` beside it. `abort()` removes the temporary file.
 */
export class TFRecordFileWriter {
  private buffer = new Uint8Array(BUFFER_BYTES);
  private used = 0;
  private closed = false;
  /** Records written so far. */
  records = 0;
  /** Framed (uncompressed) bytes written so far. */
  framedBytes = 0;

  private constructor(
    readonly file: string,
    readonly tempFile: string,
    private readonly sink: ByteSink,
  ) {}

  static async open(file: string, options: { compression?: Compression } = {}): Promise<TFRecordFileWriter> {
    const temp = tempNameFor(file);
    return new TFRecordFileWriter(file, temp, await openSink(temp, options.compression ?? 'none'));
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.buffer.subarray(0, this.used);
    // A zlib stream may hold on to the chunk, so it gets a fresh buffer; the file sink has written the
    // bytes when its write resolves, so the buffer is reused.
    if (this.sink.keepsChunks) this.buffer = new Uint8Array(BUFFER_BYTES);
    this.used = 0;
    await this.sink.write(chunk);
  }

  /** Frames `length` and its masked CRC into the buffer at `used` (room was made by the caller). */
  private putHeader(length: number): void {
    const b = this.buffer;
    const at = this.used;
    // length as uint64 LE: records are < 2^31 bytes here, so the high word is 0.
    b[at] = length & 0xff;
    b[at + 1] = (length >>> 8) & 0xff;
    b[at + 2] = (length >>> 16) & 0xff;
    b[at + 3] = (length >>> 24) & 0xff;
    b.fill(0, at + 4, at + 8);
    putUint32LE(b, at + 8, maskedCrc32c(b.subarray(at, at + 8)));
    this.used += HEADER_BYTES;
  }

  /** Appends one record (the serialized Example or any bytes). */
  async write(data: Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`${this.file}: write after close`);
    if (data.length > 0x7fffffff) throw new Error(`${this.file}: record of ${data.length} bytes is too large for TFRecord readers (max 2 GiB)`);
    const framed = HEADER_BYTES + data.length + FOOTER_BYTES;
    // Frame straight into the buffer; await only when it has to be flushed (an await per record costs
    // more than framing it).
    if (this.used + framed > BUFFER_BYTES) await this.flush();
    if (framed <= BUFFER_BYTES) {
      this.putHeader(data.length);
      this.buffer.set(data, this.used);
      this.used += data.length;
    } else {
      // A record larger than the buffer goes to the sink directly, between header and footer.
      this.putHeader(data.length);
      await this.flush();
      await this.sink.write(data);
    }
    putUint32LE(this.buffer, this.used, maskedCrc32c(data));
    this.used += FOOTER_BYTES;
    this.records++;
    this.framedBytes += framed;
  }

  /** Flushes, syncs and renames into place; returns the records written and the file's size on disk. */
  async close(finalName: string = this.file): Promise<{ file: string; records: number; bytes: number }> {
    if (this.closed) throw new Error(`${this.file}: closed twice`);
    this.closed = true;
    try {
      await this.flush();
      await this.sink.end();
    } catch (err) {
      await this.abortAfterClose();
      throw err;
    }
    await fsp.rename(this.tempFile, finalName);
    const { size } = await fsp.stat(finalName);
    return { file: finalName, records: this.records, bytes: size };
  }

  private async abortAfterClose(): Promise<void> {
    await this.sink.destroy();
    await fsp.rm(this.tempFile, { force: true });
  }

  /** Drops the temporary file. */
  async abort(): Promise<void> {
    this.closed = true;
    await this.abortAfterClose();
  }
}

export interface ShardOptions {
  compression?: Compression;
  /** Start a new shard after this many records. */
  shardRecords?: number;
  /** Start a new shard before a record would take the shard's framed (uncompressed) bytes past this. */
  shardBytes?: number;
}

export interface ShardInfo {
  /** File name inside the folder. */
  file: string;
  records: number;
  /** Size on disk (compressed size when compressed). */
  bytes: number;
}

/**
 * Writes records into `part-XXXXX-of-YYYYY.tfrecord[.gz|.zz]` shards of a folder. Shards are written under
 * temporary names and renamed at `close()`, when the total is known. With no records, one empty shard is
 * written so the folder still says what it is.
 */
export class TFRecordShardWriter {
  private current: TFRecordFileWriter | null = null;
  private readonly done: Array<{ temp: string; records: number }> = [];
  private closed = false;
  records = 0;

  private constructor(
    readonly dir: string,
    private readonly options: Required<Pick<ShardOptions, 'compression'>> & ShardOptions,
  ) {}

  static async create(dir: string, options: ShardOptions = {}): Promise<TFRecordShardWriter> {
    for (const [name, value] of [['shardRecords', options.shardRecords], ['shardBytes', options.shardBytes]] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new Error(`TFRecordShardWriter: ${name} must be a positive integer, got ${value}`);
      }
    }
    await fsp.mkdir(dir, { recursive: true });
    return new TFRecordShardWriter(dir, { ...options, compression: options.compression ?? 'none' });
  }

  private async finishCurrent(): Promise<void> {
    if (!this.current) return;
    const writer = this.current;
    this.current = null;
    // Close into the temp name; the final name needs the shard total.
    const closed = await writer.close(writer.tempFile + '.done');
    this.done.push({ temp: closed.file, records: closed.records });
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`${this.dir}: write after close`);
    const framed = HEADER_BYTES + data.length + FOOTER_BYTES;
    const { shardRecords, shardBytes } = this.options;
    if (
      this.current &&
      this.current.records > 0 &&
      ((shardRecords !== undefined && this.current.records >= shardRecords) ||
        (shardBytes !== undefined && this.current.framedBytes + framed > shardBytes))
    ) {
      await this.finishCurrent();
    }
    if (!this.current) {
      const index = this.done.length;
      this.current = await TFRecordFileWriter.open(path.join(this.dir, `part-${String(index).padStart(5, '0')}.tfrecord`), {
        compression: this.options.compression,
      });
    }
    await this.current.write(data);
    this.records++;
  }

  /** Closes the last shard and gives every shard its final name. */
  async close(): Promise<ShardInfo[]> {
    if (this.closed) throw new Error(`${this.dir}: closed twice`);
    if (!this.current && this.done.length === 0) {
      this.current = await TFRecordFileWriter.open(path.join(this.dir, 'part-00000.tfrecord'), { compression: this.options.compression });
    }
    await this.finishCurrent();
    this.closed = true;
    const total = this.done.length;
    const shards: ShardInfo[] = [];
    for (let i = 0; i < total; i++) {
      const name = shardName(i, total, this.options.compression);
      await fsp.rename(this.done[i]!.temp, path.join(this.dir, name));
      const { size } = await fsp.stat(path.join(this.dir, name));
      shards.push({ file: name, records: this.done[i]!.records, bytes: size });
    }
    return shards;
  }

  /** Removes every shard written so far. */
  async abort(): Promise<void> {
    this.closed = true;
    if (this.current) await this.current.abort();
    this.current = null;
    for (const d of this.done) await fsp.rm(d.temp, { force: true });
  }
}

/** Writes all `records` into one file (convenience for small files and tests). */
export async function writeRecordsToFile(
  file: string,
  records: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  options: { compression?: Compression } = {},
): Promise<{ file: string; records: number; bytes: number }> {
  const writer = await TFRecordFileWriter.open(file, options);
  try {
    for await (const r of records) await writer.write(r);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.close();
}

// Random access to a tensor dataset on disk, for training's shuffled batches. Opening builds an offset index of
// every record (one 12-byte positioned read per record: the length and its CRC, never the data), so memory holds
// ~14 bytes per sample however large the dataset; each batch is then a handful of positioned reads that run
// concurrently in libuv's thread pool while the page cache does the rest.
//
// Every read is checked as if it were the first: the header is re-read and must announce the indexed length with
// a valid CRC, the data CRC must match, and the shard's size and mtime must be those seen at open. A shard that
// is rewritten, truncated or damaged while training runs therefore fails with the file, record and byte offset,
// never as a silently different batch. (A shard replaced by rename keeps being read from the open descriptor,
// i.e. the very bytes indexed at open.)
import fsp from 'node:fs/promises';
import path from 'node:path';
import { decodeExample } from '../tfrecord/example.js';
import { listShards } from '../tfrecord/reader.js';
import { maskedCrc32c } from '../tfrecord/crc32c.js';
import { FOOTER_BYTES, HEADER_BYTES, TFRecordError } from '../tfrecord/framing.js';
import { decodeX, decodeY, elementCount, readTensorSpec, recordTensors, type TensorDatasetSpec } from './dataset.js';

/** A batch as training consumes it: x float32 and y class indices, sample-major. */
export interface ItemBatch {
  x: Float32Array;
  y: Uint8Array;
  count: number;
}

/** Where training batches come from: arrays in memory or a dataset on disk. */
export interface BatchSource {
  readonly count: number;
  /** The items `indices`, in that order, as one batch (a fresh buffer the caller may modify). */
  read(indices: readonly number[]): Promise<ItemBatch>;
}

interface Shard {
  file: string;
  handle: fsp.FileHandle;
  size: number;
  mtimeMs: number;
}

const CHANGED_ADVICE = 'the dataset changed while training read it; re-run the stage that wrote it, then train again';

function readUint32LE(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** Reads exactly `length` bytes at `position` (fewer only at the end of the file). */
async function readAt(handle: fsp.FileHandle, buffer: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

export class TensorDatasetReader implements BatchSource {
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly spec: TensorDatasetSpec,
    private readonly shards: Shard[],
    /** Per record: its shard, the byte offset of its header and its data length. */
    private readonly recordShard: Uint16Array,
    private readonly recordOffset: Float64Array,
    private readonly recordLength: Uint32Array,
    private readonly recordInShard: Uint32Array,
  ) {}

  get count(): number {
    return this.spec.count;
  }

  /** Opens the shards and indexes every record (headers only, each length CRC checked). */
  static async open(dir: string): Promise<TensorDatasetReader> {
    const spec = await readTensorSpec(dir);
    const listed = await listShards(dir);
    const n = spec.count;
    const recordShard = new Uint16Array(n);
    const recordOffset = new Float64Array(n);
    const recordLength = new Uint32Array(n);
    const recordInShard = new Uint32Array(n);
    const shards: Shard[] = [];
    try {
      let record = 0;
      const header = new Uint8Array(HEADER_BYTES);
      for (const [s, entry] of listed.entries()) {
        const file = path.join(dir, entry.file);
        if (entry.compression !== 'none') throw new Error(`${file}: compressed tensor shards cannot be read at random; tensor datasets are written uncompressed`);
        const handle = await fsp.open(file, 'r');
        const stat = await handle.stat();
        shards.push({ file, handle, size: stat.size, mtimeMs: stat.mtimeMs });
        let position = 0;
        let inShard = 0;
        while (position < stat.size) {
          const got = await readAt(handle, header, position);
          if (got < HEADER_BYTES) throw new TFRecordError(file, inShard, position, `truncated record header (${got} of ${HEADER_BYTES} bytes)`);
          if (maskedCrc32c(header.subarray(0, 8)) !== readUint32LE(header, 8)) {
            throw new TFRecordError(file, inShard, position, 'length CRC mismatch (the length field is damaged)');
          }
          const length = readUint32LE(header, 0);
          if (readUint32LE(header, 4) !== 0 || length > 0x7fffffff) throw new TFRecordError(file, inShard, position, 'record length is implausible');
          if (position + HEADER_BYTES + length + FOOTER_BYTES > stat.size) {
            throw new TFRecordError(file, inShard, position, `truncated record: the header announces ${length} data bytes but the file ends at byte ${stat.size}`);
          }
          if (record >= n) throw new Error(`${file}: more records than spec.json's count ${n}; re-run the stage that wrote it`);
          recordShard[record] = s;
          recordOffset[record] = position;
          recordLength[record] = length;
          recordInShard[record] = inShard;
          record++;
          inShard++;
          position += HEADER_BYTES + length + FOOTER_BYTES;
        }
      }
      if (record !== n) throw new Error(`${dir}: ${record} records in the shards but spec.json says ${n}; re-run the stage that wrote it`);
    } catch (err) {
      await Promise.all(shards.map((s) => s.handle.close().catch(() => undefined)));
      throw err;
    }
    return new TensorDatasetReader(dir, spec, shards, recordShard, recordOffset, recordLength, recordInShard);
  }

  /** Bytes the index holds (what RSS grows by per sample). */
  get indexBytes(): number {
    return this.recordShard.byteLength + this.recordOffset.byteLength + this.recordLength.byteLength + this.recordInShard.byteLength;
  }

  private async checkUnchanged(shard: Shard, record: number, offset: number): Promise<void> {
    const stat = await shard.handle.stat();
    if (stat.size !== shard.size || stat.mtimeMs !== shard.mtimeMs) {
      const what = stat.size !== shard.size ? `its size went from ${shard.size} to ${stat.size} bytes` : 'it was modified';
      throw new TFRecordError(shard.file, record, offset, `the shard changed since training opened it (${what})`, CHANGED_ADVICE);
    }
  }

  /** Reads, verifies and decodes item `item` into x/y at slot `slot` of a batch. */
  private async readItem(item: number, slot: number, x: Float32Array, y: Uint8Array): Promise<void> {
    if (!Number.isInteger(item) || item < 0 || item >= this.spec.count) throw new Error(`${this.dir}: item ${item} out of range 0..${this.spec.count - 1}`);
    const shard = this.shards[this.recordShard[item]!]!;
    const offset = this.recordOffset[item]!;
    const length = this.recordLength[item]!;
    const index = this.recordInShard[item]!;
    const framed = new Uint8Array(HEADER_BYTES + length + FOOTER_BYTES);
    const got = await readAt(shard.handle, framed, offset);
    await this.checkUnchanged(shard, index, offset);
    if (got < framed.length) {
      throw new TFRecordError(shard.file, index, offset, `truncated record: ${got} of ${framed.length} bytes left (the shard was cut short while training read it)`, CHANGED_ADVICE);
    }
    if (maskedCrc32c(framed.subarray(0, 8)) !== readUint32LE(framed, 8) || readUint32LE(framed, 0) !== length || readUint32LE(framed, 4) !== 0) {
      throw new TFRecordError(shard.file, index, offset, `the record header no longer announces the ${length} bytes indexed at open`, CHANGED_ADVICE);
    }
    const data = framed.subarray(HEADER_BYTES, HEADER_BYTES + length);
    if (maskedCrc32c(data) !== readUint32LE(framed, HEADER_BYTES + length)) {
      throw new TFRecordError(shard.file, index, offset, "data CRC mismatch (the record's bytes are damaged or changed)");
    }
    const where = `${shard.file}: record ${index} at byte ${offset}`;
    let features;
    try {
      features = decodeExample(data);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}; the dataset does not match its spec.json: re-run the stage that wrote it`);
    }
    const tensors = recordTensors(this.spec, features, where);
    decodeX(this.spec, tensors.x, x, slot * elementCount(this.spec.x.shape));
    decodeY(this.spec, tensors.y, y, slot * elementCount(this.spec.y.shape), where);
  }

  async read(indices: readonly number[]): Promise<ItemBatch> {
    if (this.closed) throw new Error(`${this.dir}: read after close`);
    const x = new Float32Array(indices.length * elementCount(this.spec.x.shape));
    const y = new Uint8Array(indices.length * elementCount(this.spec.y.shape));
    await Promise.all(indices.map((item, slot) => this.readItem(item, slot, x, y)));
    return { x, y, count: indices.length };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.shards.map((s) => s.handle.close()));
  }
}

/**
 * Reads batches ahead of the consumer: while step k computes, the reads of steps k+1..k+depth-1 are in flight,
 * so the training step waits only when the disk is slower than the compute. Results are handed out strictly by
 * step, so the items and their order are the caller's plan exactly.
 */
export class BatchPrefetcher {
  private readonly pending = new Map<number, Promise<ItemBatch>>();

  constructor(
    private readonly source: BatchSource,
    /** The items of a step, or null past the end of the plan. */
    private readonly plan: (step: number) => readonly number[] | null,
    private readonly depth = 3,
  ) {}

  take(step: number): Promise<ItemBatch> {
    for (let k = step; k < step + this.depth; k++) {
      if (this.pending.has(k)) continue;
      const indices = this.plan(k);
      if (indices === null) break;
      const read = this.source.read(indices);
      // A read ahead that fails is reported when its step takes it, not as an unhandled rejection.
      read.catch(() => undefined);
      this.pending.set(k, read);
    }
    const batch = this.pending.get(step);
    if (batch === undefined) throw new Error(`internal: step ${step} is not in the plan`);
    this.pending.delete(step);
    return batch;
  }

  /** Waits for reads still in flight (their results are dropped), so the source can be closed. */
  async drain(): Promise<void> {
    await Promise.all([...this.pending.values()].map((p) => p.catch(() => undefined)));
    this.pending.clear();
  }
}

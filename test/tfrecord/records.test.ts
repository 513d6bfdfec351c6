// Framing, CRCs, streaming reader/writer and sharding, including the bad inputs the reader must name:
// a flipped data byte, a truncated last record, a damaged length CRC, a damaged gzip stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { makeTempDir } from '../helpers/paths.js';
import { crc32c, maskCrc, maskedCrc32c, unmaskCrc } from '../../lib/tfrecord/crc32c.js';
import { frameRecord, TFRecordError, parseShardName, shardName } from '../../lib/tfrecord/framing.js';
import { readRecords, listShards, detectCompression } from '../../lib/tfrecord/reader.js';
import { TFRecordShardWriter, writeRecordsToFile } from '../../lib/tfrecord/writer.js';
import { Rng } from '../../lib/rng.js';

const enc = (s: string) => new TextEncoder().encode(s);

async function collect(file: string, options = {}) {
  const out: Array<{ data: Uint8Array; index: number; offset: number }> = [];
  for await (const r of readRecords(file, options)) out.push({ ...r, data: Uint8Array.from(r.data) });
  return out;
}

function randomRecords(seed: number, count: number, maxLength: number): Uint8Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const data = new Uint8Array(rng.int(maxLength + 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    return data;
  });
}

test('crc32c matches the Castagnoli check value and known masked values', () => {
  assert.equal(crc32c(enc('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 B.4: 32 bytes of zeros.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  for (const c of [0, 1, 0xe3069283, 0xffffffff, 0x12345678]) assert.equal(unmaskCrc(maskCrc(c)), c);
  // From the grain oracle: record "1" (length 1) has masked length CRC 1105097985, data CRC 3595177155.
  assert.equal(maskedCrc32c(Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0)), 1105097985);
  assert.equal(maskedCrc32c(enc('1')), 3595177155);
});

test('records of all sizes round-trip, including ones spanning read chunks, for every compression', async () => {
  const dir = makeTempDir();
  const big = new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff); // spans several 1 MiB read chunks
  const records = [...randomRecords(1, 40, 3000), new Uint8Array(0), big, ...randomRecords(3, 5, 10)];
  for (const compression of ['none', 'gzip', 'zlib'] as const) {
    const file = path.join(dir, `r.${compression}`);
    const info = await writeRecordsToFile(file, records, { compression });
    assert.equal(info.records, records.length);
    assert.equal(await detectCompression(file), compression);
    const back = await collect(file);
    assert.equal(back.length, records.length);
    let offset = 0;
    back.forEach((r, i) => {
      assert.equal(r.index, i);
      assert.equal(r.offset, offset);
      assert.deepEqual(r.data, records[i]);
      offset += 16 + records[i]!.length;
    });
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  }
  // Uncompressed output is exactly the concatenated framing.
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, 'r.none'))), new Uint8Array(Buffer.concat(records.map(frameRecord))));
});

test('a plain file whose first length bytes look like gzip or zlib magic is still read as plain', async () => {
  const dir = makeTempDir();
  const gzipLike = new Uint8Array(0x8b1f); // length LE starts 1f 8b
  const zlibLike = new Uint8Array(0x9c78); // length LE starts 78 9c
  for (const [name, data] of [['g', gzipLike], ['z', zlibLike]] as const) {
    const file = path.join(dir, name);
    await writeRecordsToFile(file, [data]);
    assert.equal(await detectCompression(file), 'none');
    assert.equal((await collect(file))[0]!.data.length, data.length);
  }
});

async function threeRecordFile(dir: string): Promise<string> {
  const file = path.join(dir, 'three.tfrecord');
  await writeRecordsToFile(file, [enc('first record'), enc('second record!'), enc('third')]);
  return file;
}

test('a flipped byte in data gives a data CRC error naming file, record index and offset', async () => {
  const file = await threeRecordFile(makeTempDir());
  const bytes = fs.readFileSync(file);
  const second = 12 + 12 + 4; // offset of record 1
  bytes[second + 12 + 3]! ^= 0x40;
  fs.writeFileSync(file, bytes);
  await assert.rejects(collect(file), (err: unknown) => {
    assert.ok(err instanceof TFRecordError);
    assert.equal(err.file, file);
    assert.equal(err.index, 1);
    assert.equal(err.offset, second);
    assert.match(err.message, /three\.tfrecord: record 1 at byte 28: data CRC mismatch.*corrupt or was not written completely; re-run the stage that wrote it/);
    return true;
  });
  // The records before the damage were delivered first (streaming).
  const seen: number[] = [];
  await assert.rejects(async () => {
    for await (const r of readRecords(file)) seen.push(r.index);
  }, TFRecordError);
  assert.deepEqual(seen, [0]);
});

test('a truncated last record is reported with its index and offset', async () => {
  const file = await threeRecordFile(makeTempDir());
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 3));
  await assert.rejects(collect(file), /three\.tfrecord: record 2 at byte 58: truncated record: the header announces 5 data bytes \+ 4 CRC bytes but only 6 follow/);
  fs.writeFileSync(file, bytes.subarray(0, 58 + 7));
  await assert.rejects(collect(file), /record 2 at byte 58: truncated record header \(7 of 12 bytes\)/);
});

test('a wrong length CRC is reported as such', async () => {
  const file = await threeRecordFile(makeTempDir());
  const bytes = fs.readFileSync(file);
  bytes[8]! ^= 0x01;
  fs.writeFileSync(file, bytes);
  await assert.rejects(collect(file), (err: unknown) => err instanceof TFRecordError && err.index === 0 && err.offset === 0 && /length CRC mismatch/.test(err.message));
});

test('a truncated or damaged gzip stream is a TFRecordError, not a raw zlib error', async () => {
  const dir = makeTempDir();
  const file = path.join(dir, 'x.tfrecord.gz');
  await writeRecordsToFile(file, randomRecords(4, 200, 500), { compression: 'gzip' });
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assert.rejects(collect(file), (err: unknown) => err instanceof TFRecordError && /x\.tfrecord\.gz: record \d+ at byte \d+: (gzip stream is damaged|truncated)/.test(err.message));
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(bytes.length / 2)]! ^= 0xff;
  fs.writeFileSync(file, flipped);
  await assert.rejects(collect(file), TFRecordError);
});

test('a missing file names the file', async () => {
  await assert.rejects(collect(path.join(makeTempDir(), 'nope.tfrecord'), { compression: 'none' }), /nope\.tfrecord: cannot read/);
});

test('TFRecordShardWriter shards by record count and by bytes, renaming at close', async () => {
  const dir = path.join(makeTempDir(), 'shards');
  const writer = await TFRecordShardWriter.create(dir, { shardRecords: 4, compression: 'gzip' });
  const records = randomRecords(5, 10, 100);
  for (const r of records.slice(0, 5)) await writer.write(r);
  // While open, nothing carries a final shard name.
  assert.deepEqual(fs.readdirSync(dir).filter((f) => parseShardName(f)), []);
  for (const r of records.slice(5)) await writer.write(r);
  const shards = await writer.close();
  assert.deepEqual(shards.map((s) => [s.file, s.records]), [
    ['part-00000-of-00003.tfrecord.gz', 4],
    ['part-00001-of-00003.tfrecord.gz', 4],
    ['part-00002-of-00003.tfrecord.gz', 2],
  ]);
  assert.deepEqual(fs.readdirSync(dir).sort(), shards.map((s) => s.file));
  for (const s of shards) assert.equal(s.bytes, fs.statSync(path.join(dir, s.file)).size);
  assert.deepEqual((await listShards(dir)).map((s) => s.compression), ['gzip', 'gzip', 'gzip']);
  const back: Uint8Array[] = [];
  for (const s of shards) for (const r of await collect(path.join(dir, s.file))) back.push(r.data);
  assert.deepEqual(back, records);

  const byBytes = path.join(makeTempDir(), 'b');
  const w2 = await TFRecordShardWriter.create(byBytes, { shardBytes: 100 });
  for (const n of [40, 40, 10, 90, 200, 5]) await w2.write(new Uint8Array(n)); // framed: 56, 56, 26, 106, 216, 21
  assert.deepEqual((await w2.close()).map((s) => s.records), [1, 2, 1, 1, 1]);
});

test('abort leaves no shard behind; an empty dataset still gets one (empty) shard', async () => {
  const dir = path.join(makeTempDir(), 'a');
  const writer = await TFRecordShardWriter.create(dir, { shardRecords: 2 });
  for (const r of randomRecords(6, 5, 10)) await writer.write(r);
  await writer.abort();
  assert.deepEqual(fs.readdirSync(dir), []);
  const empty = await TFRecordShardWriter.create(dir, {});
  assert.deepEqual(await empty.close(), [{ file: shardName(0, 1, 'none'), records: 0, bytes: 0 }]);
});

test('listShards rejects an incomplete shard set', async () => {
  const dir = makeTempDir();
  fs.writeFileSync(path.join(dir, 'part-00000-of-00003.tfrecord'), '');
  fs.writeFileSync(path.join(dir, 'part-00002-of-00003.tfrecord'), '');
  await assert.rejects(listShards(dir), /do not form one complete set of 3/);
  fs.writeFileSync(path.join(dir, 'part-00001-of-00003.tfrecord'), zlib.gzipSync(''));
  assert.equal((await listShards(dir)).length, 3);
});

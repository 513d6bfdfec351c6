// Conformance with TensorFlow: files written by TensorFlow/Beam tools (test/fixtures/tfrecord/oracles,
// see its README) read back to exactly the documented records and features, and our writer reproduces
// their framed bytes from the same features.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { fixturesDir, makeTempDir } from '../helpers/paths.js';
import { readRecords, detectCompression } from '../../lib/tfrecord/reader.js';
import { writeRecordsToFile } from '../../lib/tfrecord/writer.js';
import { decodeExample, encodeExample, type Feature, type Features } from '../../lib/tfrecord/example.js';
import { maskedCrc32c } from '../../lib/tfrecord/crc32c.js';

const oracleDir = path.join(fixturesDir, 'tfrecord', 'oracles');

interface ExpectedFeature {
  kind: 'bytes_list' | 'float_list' | 'int64_list' | null;
  value: Array<string | number>;
}
interface Expected {
  file: string;
  file_bytes: number;
  sha256: string;
  compression: 'GZIP' | 'NONE';
  framed_bytes: number;
  framed_sha256: string;
  records: Array<{
    length: number;
    length_crc_masked: number;
    data_crc_masked: number;
    data_hex: string;
    features?: Record<string, ExpectedFeature>;
  }>;
}

const oracles = fs
  .readdirSync(oracleDir)
  .filter((f) => f.endsWith('.expected.json'))
  .sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(oracleDir, f), 'utf8')) as Expected);

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const hex = (data: Uint8Array) => Buffer.from(data).toString('hex');

function framedBytesOf(expected: Expected): Buffer {
  const raw = fs.readFileSync(path.join(oracleDir, expected.file));
  return expected.compression === 'GZIP' ? zlib.gunzipSync(raw) : raw;
}

/** The documented feature as our Feature type (expected JSON lists floats as float64 of the float32). */
function toFeature(e: ExpectedFeature): Feature {
  switch (e.kind) {
    case 'bytes_list':
      return { kind: 'bytes', value: e.value.map((v) => new TextEncoder().encode(String(v))) };
    case 'float_list':
      return { kind: 'float', value: Float32Array.from(e.value as number[]) };
    case 'int64_list':
      return { kind: 'int64', value: e.value.map((v) => BigInt(v)) };
    case null:
      return { kind: 'empty' };
  }
}

test('there are oracle files for every case the README lists', () => {
  assert.equal(oracles.length, 7);
  assert.ok(oracles.some((o) => o.compression === 'GZIP') && oracles.some((o) => o.compression === 'NONE'));
});

for (const expected of oracles) {
  test(`reads ${expected.file} exactly as documented`, async () => {
    const file = path.join(oracleDir, expected.file);
    const raw = fs.readFileSync(file);
    assert.equal(raw.length, expected.file_bytes);
    assert.equal(sha256(raw), expected.sha256, 'fixture differs from the oracle');
    assert.equal(await detectCompression(file), expected.compression === 'GZIP' ? 'gzip' : 'none');

    const framed = framedBytesOf(expected);
    assert.equal(framed.length, expected.framed_bytes);
    assert.equal(sha256(framed), expected.framed_sha256);

    const records = [];
    for await (const r of readRecords(file)) records.push({ ...r, data: Uint8Array.from(r.data) });
    assert.equal(records.length, expected.records.length);
    let offset = 0;
    records.forEach((r, i) => {
      const want = expected.records[i]!;
      assert.equal(r.index, i);
      assert.equal(r.offset, offset);
      assert.equal(r.data.length, want.length);
      assert.equal(hex(r.data), want.data_hex);
      // The stored CRCs are what our CRC computes.
      assert.equal(framed.readUInt32LE(offset + 8), want.length_crc_masked);
      assert.equal(maskedCrc32c(framed.subarray(offset, offset + 8)), want.length_crc_masked);
      assert.equal(maskedCrc32c(r.data), want.data_crc_masked);
      offset += 12 + want.length + 4;

      if (want.features) {
        const decoded = decodeExample(r.data);
        assert.deepEqual(Object.keys(decoded).sort(), Object.keys(want.features).sort());
        for (const [name, f] of Object.entries(want.features)) {
          const got = decoded[name]!;
          const exp = toFeature(f);
          assert.equal(got.kind, exp.kind, `${expected.file} record ${i} feature ${name}`);
          if (got.kind === 'float') {
            // Exactly the float32 TensorFlow stored (the JSON holds its float64 expansion).
            assert.deepEqual(Array.from(got.value), (f.value as number[]).map(Math.fround));
            assert.deepEqual(Array.from(got.value), f.value);
          } else if (got.kind === 'bytes') {
            assert.deepEqual(got.value.map((b) => new TextDecoder().decode(b)), f.value);
          } else if (got.kind === 'int64') {
            assert.deepEqual(got.value, f.value.map((v) => BigInt(v)));
          }
        }
      }
    });
    assert.equal(offset, expected.framed_bytes);
  });

  test(`writer reproduces the framed bytes of ${expected.file}`, async () => {
    // Build each record from the documented features (not from our decoder), in the file's key order.
    const payloads = expected.records.map((rec) => {
      if (!rec.features) return Uint8Array.from(Buffer.from(rec.data_hex, 'hex'));
      const wireOrder = Object.keys(decodeExample(Buffer.from(rec.data_hex, 'hex')));
      const features: Features = {};
      for (const name of wireOrder) features[name] = toFeature(rec.features[name]!);
      const encoded = encodeExample(features, { order: 'insertion' });
      assert.equal(hex(encoded), rec.data_hex);
      return encoded;
    });
    const dir = makeTempDir();
    const plain = await writeRecordsToFile(path.join(dir, 'plain.tfrecord'), payloads);
    const written = fs.readFileSync(plain.file);
    assert.equal(plain.records, expected.records.length);
    assert.equal(sha256(written), expected.framed_sha256);
    if (expected.compression === 'NONE') assert.deepEqual(written, fs.readFileSync(path.join(oracleDir, expected.file)));
    else {
      const gz = await writeRecordsToFile(path.join(dir, 'c.tfrecord.gz'), payloads, { compression: 'gzip' });
      assert.deepEqual(zlib.gunzipSync(fs.readFileSync(gz.file)), framedBytesOf(expected));
    }
    fs.rmSync(dir, { recursive: true });
  });
}

test('a ZLIB-compressed file (TensorFlow\'s other option) is detected and reads back the same records', async () => {
  const dir = makeTempDir();
  const source = oracles.find((o) => o.file === 'tfx_penguin_Split-eval_data_tfrecord-00000-of-00001.gz')!;
  const file = path.join(dir, 'penguin.tfrecord.zz');
  fs.writeFileSync(file, zlib.deflateSync(framedBytesOf(source)));
  assert.equal(await detectCompression(file), 'zlib');
  const hexes: string[] = [];
  for await (const r of readRecords(file)) hexes.push(hex(r.data));
  assert.deepEqual(hexes, source.records.map((r) => r.data_hex));

  // And our zlib writer produces a stream that inflates to the same framed bytes.
  const ours = await writeRecordsToFile(path.join(dir, 'ours.zz'), source.records.map((r) => Buffer.from(r.data_hex, 'hex')), { compression: 'zlib' });
  assert.equal(sha256(zlib.inflateSync(fs.readFileSync(ours.file))), source.framed_sha256);
  fs.rmSync(dir, { recursive: true });
});

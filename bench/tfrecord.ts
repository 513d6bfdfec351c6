// TFRecord bench, one table per run:
//  1. write and read ~200 MB of records through lib/tfrecord beside plain fs writes/reads of the same
//     framed bytes in the same run (MB/s and ratio; goal >= 70% of plain I/O), uncompressed;
//  2. peak RSS of tfrecord.write converting the shipped Carvana sample vs a generated index 20x larger
//     (goal: flat, within 1.5x), each conversion in its own child process so peaks do not mix.
// Run: node --import tsx bench/tfrecord.ts [--quick]  (or node dist/bench/tfrecord.js after the build)
// Big files go under /tmp (or $TMPDIR) and are deleted.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TFRecordFileWriter } from '../lib/tfrecord/writer.js';
import { readRecords } from '../lib/tfrecord/reader.js';
import { frameRecord } from '../lib/tfrecord/framing.js';
import { crc32c } from '../lib/tfrecord/crc32c.js';
import { convertIndexToShards } from '../stages/tfrecord-write/convert.js';
import { Rng } from '../lib/rng.js';
import { isMainModule, machineLine, median, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';
import { CARVANA_LABELS } from '../lib/datasets/carvana/ingest.js';

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(thisFile), path.basename(path.dirname(path.dirname(thisFile))) === 'dist' ? '../..' : '..');
const CHUNK = 1 << 20;

interface BenchRow {
  what: string;
  value: string;
  reference: string;
  ratio: string;
}

function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Plain fs: the same framed bytes (framed beforehand) in 1 MiB writes, fsync, close. */
async function plainWrite(file: string, framedRecords: Uint8Array[]): Promise<void> {
  const handle = await fsp.open(file, 'w');
  const buffer = new Uint8Array(CHUNK);
  let used = 0;
  for (const framed of framedRecords) {
    let at = 0;
    while (at < framed.length) {
      const n = Math.min(framed.length - at, CHUNK - used);
      buffer.set(framed.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === CHUNK) {
        await handle.write(buffer, 0, used);
        used = 0;
      }
    }
  }
  if (used > 0) await handle.write(buffer, 0, used);
  await handle.sync();
  await handle.close();
}

async function plainRead(file: string): Promise<number> {
  let total = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: CHUNK })) total += (chunk as Buffer).length;
  return total;
}

async function throughput(recordBytes: number, totalBytes: number, dir: string, rounds: number): Promise<BenchRow[]> {
  const rng = new Rng(1);
  const pool = Array.from({ length: 8 }, () => {
    const b = new Uint8Array(recordBytes);
    for (let i = 0; i < b.length; i += 4) b[i] = rng.int(256);
    return b;
  });
  const count = Math.ceil(totalBytes / recordBytes);
  const records = Array.from({ length: count }, (_, i) => pool[i % pool.length]!);
  const framedTotal = records.reduce((a, r) => a + r.length + 16, 0);
  // The baseline writes bytes framed beforehand (untimed), so it measures I/O only.
  const plainFile = path.join(dir, 'plain.bin');
  const ourFile = path.join(dir, 'ours.tfrecord');
  // Alternating rounds (fs, flow, fs, flow, ...) with the median of each, so machine load hits both alike.
  const times = { plainWrite: [] as number[], oursWrite: [] as number[], plainRead: [] as number[], oursRead: [] as number[] };
  let sameBytes = true;
  for (let round = 0; round < rounds; round++) {
    const framed = records.map(frameRecord);
    times.plainWrite.push(await timed(() => plainWrite(plainFile, framed)));
    framed.length = 0;
    times.oursWrite.push(
      await timed(async () => {
        const w = await TFRecordFileWriter.open(ourFile);
        for (const r of records) await w.write(r);
        await w.close();
      }),
    );
    let plainBytes = 0;
    times.plainRead.push(
      await timed(async () => {
        plainBytes = await plainRead(plainFile);
      }),
    );
    let oursCount = 0;
    times.oursRead.push(
      await timed(async () => {
        for await (const r of readRecords(ourFile, { compression: 'none' })) if (r.data.length === recordBytes) oursCount++;
      }),
    );
    if (oursCount !== count || plainBytes !== framedTotal) throw new Error('bench: read back a different amount than written');
    sameBytes &&= Buffer.compare(fs.readFileSync(plainFile), fs.readFileSync(ourFile)) === 0;
    await fsp.rm(plainFile);
    await fsp.rm(ourFile);
  }
  const [oursWriteMs, plainWriteMs, oursReadMs, plainReadMs] = [times.oursWrite, times.plainWrite, times.oursRead, times.plainRead].map(median) as [number, number, number, number];
  const label = `${(recordBytes / 1024).toFixed(0)} KiB records x ${count} (${(framedTotal / 1e6).toFixed(0)} MB)`;
  const w = mbps(framedTotal, oursWriteMs);
  const pw = mbps(framedTotal, plainWriteMs);
  const r = mbps(framedTotal, oursReadMs);
  const pr = mbps(framedTotal, plainReadMs);
  return [
    { what: `write ${label}${sameBytes ? '' : ' (BYTES DIFFER)'}`, value: `${w.toFixed(0)} MB/s`, reference: `fs ${pw.toFixed(0)} MB/s`, ratio: `${((100 * w) / pw).toFixed(0)}%` },
    { what: `read+verify ${label}`, value: `${r.toFixed(0)} MB/s`, reference: `fs ${pr.toFixed(0)} MB/s`, ratio: `${((100 * r) / pr).toFixed(0)}%` },
  ];
}

function crcRow(bytes: number): BenchRow {
  const data = new Uint8Array(bytes).map((_, i) => i & 0xff);
  const ms = performance.now();
  for (let k = 0; k < 4; k++) crc32c(data);
  const speed = mbps(4 * data.length, performance.now() - ms);
  return { what: `crc32c (@node-rs/crc32), ${bytes >> 20} MiB buffers`, value: `${speed.toFixed(0)} MB/s`, reference: '', ratio: '' };
}

/** A Carvana index repeating the shipped sample `times` times (unique ids, same files). */
async function generatedIndex(dir: string, times: number): Promise<{ file: string; samples: number }> {
  const root = path.join(repoRoot, 'data', 'samples', 'carvana');
  const images = fs.readdirSync(path.join(root, 'train')).filter((f) => f.endsWith('.jpg')).sort();
  const samples = [];
  for (let t = 0; t < times; t++) {
    for (const name of images) {
      const stem = name.replace(/\.jpg$/, '');
      samples.push({ id: `${stem}_r${t}`, group: `${stem.replace(/_\d+$/, '')}_r${t}`, image: `train/${name}`, label: `train_masks/${stem}_mask.gif` });
    }
  }
  const file = path.join(dir, `index-x${times}.json`);
  await fsp.writeFile(file, JSON.stringify({ dataset: 'carvana', root, labels: CARVANA_LABELS, samples, skipped: [], files: {} }));
  return { file, samples: samples.length };
}

/**
 * Peak RSS of this process in KiB. Linux's getrusage maxrss survives exec (a child forked from a big parent
 * would report the parent's peak), so /proc's VmHWM, which belongs to the new address space, comes first.
 */
function peakRssKiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}

/** Child mode: convert one index and print the peak RSS. */
async function convertChild(indexFile: string, outDir: string): Promise<void> {
  const t = performance.now();
  const spec = await convertIndexToShards(indexFile, outDir, { shard_size: 64, shard_bytes: null, compression: 'none' }, { warn: () => undefined });
  const result = { records: spec?.records ?? 0, ms: performance.now() - t, maxRssKiB: peakRssKiB() };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function rssRows(dir: string, largeTimes: number): Promise<BenchRow[]> {
  const results = [];
  for (const times of [1, largeTimes]) {
    const { file } = await generatedIndex(dir, times);
    const out = path.join(dir, `shards-x${times}`);
    const child = spawnSync(process.execPath, [...process.execArgv, thisFile, '--convert', file, out], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`bench child failed: ${child.stderr}`);
    results.push({ times, ...(JSON.parse(child.stdout.trim().split('\n').pop()!) as { records: number; ms: number; maxRssKiB: number }) });
    await fsp.rm(out, { recursive: true, force: true });
  }
  const [small, large] = results as [(typeof results)[0], (typeof results)[0]];
  return results.map((r) => ({
    what: `tfrecord.write peak RSS, carvana sample x${r.times} (${r.records} records, ${(r.records / (r.ms / 1000)).toFixed(0)} rec/s)`,
    value: `${(r.maxRssKiB / 1024).toFixed(0)} MiB`,
    reference: r === large ? `x1: ${(small.maxRssKiB / 1024).toFixed(0)} MiB` : '',
    ratio: r === large ? `${(large.maxRssKiB / small.maxRssKiB).toFixed(2)}x` : '',
  }));
}

export async function run(options: BenchOptions): Promise<BenchTable[]> {
  const dir = await fsp.mkdtemp(path.join(process.env.TMPDIR ?? os.tmpdir(), 'flow-bench-tfrecord-'));
  const totalBytes = options.quick ? 20e6 : 200e6;
  const rounds = options.quick ? 1 : 3;
  try {
    const io = [...(await throughput(100 * 1024, totalBytes, dir, rounds)), ...(await throughput(4 * 1024, totalBytes, dir, rounds))];
    io.push(crcRow(options.quick ? 16 << 20 : 64 << 20));
    const rss = await rssRows(dir, options.quick ? 4 : 20);
    const columns = ['what', 'flow', 'baseline', 'ratio'];
    const cells = (rows: BenchRow[]) => rows.map((r) => [r.what, r.value, r.reference, r.ratio]);
    return [
      {
        title: 'TFRecord write / read+verify throughput, uncompressed',
        columns,
        rows: cells(io),
        notes: [
          machineLine(),
          `baseline: plain fs writes (1 MiB, then fsync) / fs.createReadStream reads of the same framed bytes, in the same run; median of ${rounds} alternating round(s); goal >= 70%`,
          'both files were just written, so reads come from the page cache: read+verify is bounded by CRC32C speed, not the disk',
        ],
      },
      {
        title: 'tfrecord.write peak RSS (Carvana sample vs a generated index N x larger)',
        columns,
        rows: cells(rss),
        notes: ['each conversion in its own child process (VmHWM); goal: flat, within 1.5x of the sample'],
      },
    ];
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (isMainModule(import.meta.url)) {
  if (process.argv[2] === '--convert') {
    await convertChild(process.argv[3]!, process.argv[4]!);
  } else {
    printTables(await run({ quick: quickFromArgv() }));
  }
}

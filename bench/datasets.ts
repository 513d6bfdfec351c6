// The generic dataset paths against their references, measured in the same run on the same files:
// 1. The generic 2D path (image-pairs.ingest declared to read Kaggle's layout: train/*.jpg, train_masks/
//    {stem}_mask.gif, labels {0, 255}, group ^(.+)_\d+$) against the Carvana path (carvana.ingest), both
//    followed by tfrecord.write, on the shipped Carvana sample. From the records on, both paths run the same
//    code (the same record layout read by preprocess.2d and the same adapter), so ingest + records is
//    where they can differ. Goal: generic ≤ 1.1x Carvana.
// 2. `flow init`'s fingerprint (every picture and mask decoded: sizes, channels, intensities, mask values)
//    on 1,000 generated ISIC-layout cases (200 with --quick) against reading the same files' bytes.
// Run: node --import tsx bench/datasets.ts [--quick]   (or node dist/bench/datasets.js after the build)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ingestCarvana, defaultCarvanaIngestParams } from '../lib/datasets/carvana/ingest.js';
import { ingestImagePairs } from '../lib/datasets/image-pairs/ingest.js';
import { fingerprintPairs } from '../lib/datasets/init/plan.js';
import { convertIndexToShards } from '../stages/tfrecord-write/convert.js';
import { makeIsicSample } from '../scripts/make-samples/image-pairs.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(thisFile), path.basename(path.dirname(path.dirname(thisFile))) === 'dist' ? '../..' : '..');

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

async function ingestAndRecords(kind: 'carvana' | 'generic', root: string, work: string): Promise<void> {
  const result = kind === 'carvana'
    ? await ingestCarvana(root, defaultCarvanaIngestParams)
    : await ingestImagePairs(root, {
        images: 'train/*.jpg', masks: 'train_masks/{stem}_mask.gif', labels: { 0: 'background', 255: 'car' },
        background: 0, ignore: [], regions: null, group: '^(.+)_\\d+$', split_file: null, strict: false,
      });
  const indexFile = path.join(work, `${kind}-index.json`);
  fs.writeFileSync(indexFile, JSON.stringify(result!.index));
  const shards = path.join(work, `${kind}-shards`);
  fs.rmSync(shards, { recursive: true, force: true });
  await convertIndexToShards(indexFile, shards, { shard_size: 64, shard_bytes: null, compression: 'gzip' }, { warn: () => undefined });
}

export async function run(options: BenchOptions): Promise<BenchTable[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-bench-datasets-'));
  try {
    const root = path.join(repoRoot, 'data', 'samples', 'carvana');
    const rounds = options.quick ? 3 : 7;
    const times = { carvana: [] as number[], generic: [] as number[] };
    await ingestAndRecords('carvana', root, work);
    await ingestAndRecords('generic', root, work);
    // Alternating rounds: load from other processes hits both paths alike.
    for (let r = 0; r < rounds; r++) {
      times.carvana.push(await timed(() => ingestAndRecords('carvana', root, work)));
      times.generic.push(await timed(() => ingestAndRecords('generic', root, work)));
    }
    const [c, g] = [median(times.carvana), median(times.generic)];
    const pairs = fs.readdirSync(path.join(root, 'train')).length;

    const cases = options.quick ? 200 : 1000;
    const isic = path.join(work, 'isic');
    await makeIsicSample(isic, cases, 7);
    const files = ['ISIC2018_Task1-2_Training_Input', 'ISIC2018_Task1_Training_GroundTruth'].flatMap((d) => fs.readdirSync(path.join(isic, d)).map((f) => path.join(isic, d, f)));
    const readAll = async (): Promise<void> => {
      for (const f of files) await fs.promises.readFile(f);
    };
    const fingerprint = (): Promise<unknown> => fingerprintPairs(isic, 'ISIC2018_Task1-2_Training_Input/*.jpg', 'ISIC2018_Task1_Training_GroundTruth/{stem}_segmentation.png', null);
    await readAll();
    const read: number[] = [];
    const fp: number[] = [];
    for (let r = 0; r < (options.quick ? 2 : 3); r++) {
      read.push(await timed(readAll));
      fp.push(await timed(fingerprint));
    }
    const [tr, tf] = [median(read), median(fp)];
    const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
    return [
      {
        title: `Generic 2D path vs Carvana path: ingest + tfrecord.write of the shipped sample (${pairs} pairs), median of ${rounds}`,
        columns: ['path', 'seconds', 'pairs/s', 'ratio'],
        rows: [
          ['carvana.ingest + tfrecord.write (baseline)', c.toFixed(3), (pairs / c).toFixed(1), '1.00x'],
          ['image-pairs.ingest + tfrecord.write', g.toFixed(3), (pairs / g).toFixed(1), `${(g / c).toFixed(2)}x`],
        ],
        notes: [machineLine(), 'goal: generic ≤ 1.1x the Carvana path; preprocess.2d onwards is the same code for both (same records, same adapter)'],
      },
      {
        title: `flow init fingerprint on ${cases} ISIC-layout cases (${files.length} files, ${(bytes / 1e6).toFixed(1)} MB), median of ${read.length}`,
        columns: ['work', 'seconds', 'files/s', 'ratio'],
        rows: [
          ['read every file (baseline)', tr.toFixed(3), (files.length / tr).toFixed(0), '1.00x'],
          ['fingerprint (decode every picture and mask)', tf.toFixed(3), (files.length / tf).toFixed(0), `${(tf / tr).toFixed(1)}x`],
        ],
        notes: ['goal: disk-bound; the files here come from the page cache, so the baseline is a memory read and the ratio is the decode cost'],
      },
    ];
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (isMainModule(import.meta.url)) printTables(await run({ quick: quickFromArgv() }));

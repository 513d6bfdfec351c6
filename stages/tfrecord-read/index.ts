// Step 3: reads every record of tfrecord.write's shards once, verifying both CRCs of each record and every
// Example against spec.json, and hands the verified shards on (hard links, or copies across devices) with
// spec.json and verification.json. Downstream stages stream them with readExamples().
// The shards are verified on a pool of worker threads, one shard per task, results merged in shard order (so
// verification.json is the same bytes for any pool size).
// flow:digest-also stages/tfrecord-read/verify-worker.ts
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defineStage } from '../../engine/stage.js';
import { checkShardList, readRecordSpec, SPEC_FILE } from '../../lib/tfrecord/spec.js';
import { copyFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { mapOrdered } from '../../lib/pool/pool.js';
import { siblingModule } from '../../lib/pool/start-worker.js';
import { createItemProgress, type ItemProgress } from '../../lib/train/progress.js';
import type { ShardTally, VerifyShared } from './verify-worker.js';

export type TFRecordReadParams = Record<string, never>;

export interface ShardVerification {
  file: string;
  records: number;
  /** Size on disk. */
  bytes: number;
  /** Size of the framed stream (after decompression). */
  framedBytes: number;
}

export interface Verification {
  format: 'flow.tfrecord-verification/v1';
  dataset: string;
  compression: string;
  records: number;
  shards: ShardVerification[];
  /** Every record's length and data CRC verified. */
  crcChecked: true;
  /** Every Example decoded and matched spec.json (presence, type, fixed shape lengths). */
  specChecked: true;
  /** Records that carry each feature (optional features may be absent from some). */
  featureCounts: Record<string, number>;
}

/** Hard-links `from` to `to`, copying where a link is impossible (another device, a filesystem without links). */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await fsp.link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw err;
    await copyFileAtomic(from, to);
  }
}

export interface VerifyOptions {
  signal?: AbortSignal;
  /** Worker threads (default: one per core, at most one per shard). */
  workers?: number;
  progress?: ItemProgress;
}

/** Verifies the shards folder `recordsDir` and fills `outDir`; null when interrupted. */
export async function verifyAndLink(recordsDir: string, outDir: string, options: VerifyOptions = {}): Promise<Verification | null> {
  const { signal } = options;
  const spec = await readRecordSpec(recordsDir);
  await checkShardList(recordsDir, spec);
  const perShard = new Map<string, ShardVerification>();
  for (const s of spec.shards) {
    const { size } = await fsp.stat(path.join(recordsDir, s.file));
    perShard.set(s.file, { file: s.file, records: 0, bytes: size, framedBytes: 0 });
  }
  const featureCounts: Record<string, number> = Object.fromEntries(Object.keys(spec.features).map((name) => [name, 0]));
  let records = 0;
  const shared: VerifyShared = { recordsDir, spec };
  const tallies = mapOrdered<string, ShardTally>(
    spec.shards.map((s) => s.file),
    {
      module: siblingModule(import.meta.url, 'verify-worker'),
      size: Math.min(options.workers ?? os.availableParallelism(), spec.shards.length),
      shared,
      describe: (file) => `shard ${path.join(recordsDir, file)}`,
      ...(options.progress ? { progress: options.progress } : {}),
    },
  );
  for await (const [i, tally] of enumerate(tallies)) {
    if (signal?.aborted) return null;
    const shard = perShard.get(spec.shards[i]!.file)!;
    shard.records = tally.records;
    shard.framedBytes = tally.framedBytes;
    for (const [name, count] of Object.entries(tally.featureCounts)) featureCounts[name] = (featureCounts[name] ?? 0) + count;
    records += tally.records;
  }
  await fsp.mkdir(outDir, { recursive: true });
  for (const s of spec.shards) await linkOrCopy(path.join(recordsDir, s.file), path.join(outDir, s.file));
  await fsp.copyFile(path.join(recordsDir, SPEC_FILE), path.join(outDir, SPEC_FILE));
  const verification: Verification = {
    format: 'flow.tfrecord-verification/v1',
    dataset: spec.dataset,
    compression: spec.compression,
    records,
    shards: [...perShard.values()],
    crcChecked: true,
    specChecked: true,
    featureCounts,
  };
  // Written last: its presence says the folder is complete.
  await writeJsonAtomic(path.join(outDir, 'verification.json'), verification);
  return verification;
}

async function* enumerate<T>(items: AsyncIterable<T>): AsyncGenerator<[number, T]> {
  let i = 0;
  for await (const item of items) yield [i++, item];
}

export default defineStage<TFRecordReadParams>({
  kind: 'tfrecord.read',
  version: '1',
  description: 'Verify every TFRecord (both CRCs, spec.json) and expose the shards as a checked dataset folder.',
  inputs: {
    records: { description: "tfrecord.write's shards folder (shards + spec.json)." },
  },
  outputs: {
    data: { description: 'Hard links of the verified shards, spec.json and verification.json', type: 'dir' },
  },
  async run(ctx) {
    const records = (await readRecordSpec(ctx.inputs.records!)).records;
    const progress = createItemProgress('tfrecord.read', records, 'records', ctx.interactive, (line) => ctx.print(line));
    let verification;
    try {
      verification = await verifyAndLink(ctx.inputs.records!, ctx.outs.data!, { signal: ctx.signal, progress });
    } finally {
      progress.stop();
    }
    if (verification === null) return { status: 'interrupted' };
    ctx.print(`${verification.records} records in ${verification.shards.length} shard(s) verified (CRCs and spec.json)`);
    return { status: 'done', summary: { records: verification.records, shards: verification.shards.length } };
  },
});

// A tfrecord.read worker thread: verifies whole shards (both CRCs of every record, every Example against
// spec.json) for lib/pool, and reports per record where it is so that a crash names the record.
import { serveTasks } from '../../lib/pool/serve.js';
import { readShardExamples, type TFRecordSpec } from '../../lib/tfrecord/spec.js';
import { FOOTER_BYTES, HEADER_BYTES } from '../../lib/tfrecord/framing.js';

export interface VerifyShared {
  recordsDir: string;
  spec: TFRecordSpec;
}

export interface ShardTally {
  records: number;
  framedBytes: number;
  featureCounts: Record<string, number>;
}

/** Counts one shard's records, framed bytes and features while verifying it. */
export async function verifyShard(shared: VerifyShared, file: string, at: (label: string, units: number) => void): Promise<ShardTally> {
  const shard = shared.spec.shards.find((s) => s.file === file);
  if (shard === undefined) throw new Error(`${file} is not a shard of ${shared.recordsDir}`);
  const tally: ShardTally = { records: 0, framedBytes: 0, featureCounts: {} };
  for await (const example of readShardExamples(shared.recordsDir, shared.spec, shard)) {
    at(`record ${example.index} at byte ${example.offset}`, 1);
    tally.records++;
    tally.framedBytes += HEADER_BYTES + example.length + FOOTER_BYTES;
    for (const name of Object.keys(example.features)) tally.featureCounts[name] = (tally.featureCounts[name] ?? 0) + 1;
  }
  return tally;
}

serveTasks<string, ShardTally>((file, context) => verifyShard(context.shared as VerifyShared, file, (label, units) => context.at(`${file} ${label}`, units)));

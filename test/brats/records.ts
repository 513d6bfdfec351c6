// Test helper: BraTS patients → a shards folder through tfrecord.write's own conversion (encodeBratsSample in
// lib/datasets/brats.ts), so preprocess.brats and the adapter read exactly the records a pipeline gives them.
import fs from 'node:fs';
import path from 'node:path';
import { convertIndexToShards } from '../../stages/tfrecord-write/convert.js';
import type { BratsIndex } from '../../stages/brats-ingest/ingest.js';
import { makeTempDir } from '../helpers/paths.js';

export async function writeBratsRecords(index: Pick<BratsIndex, 'root' | 'samples'>, outDir: string): Promise<void> {
  const work = makeTempDir('flow-brats-index-');
  const indexFile = path.join(work, 'index.json');
  fs.writeFileSync(indexFile, JSON.stringify({ dataset: 'brats', root: index.root, samples: index.samples, skipped: [] }));
  await convertIndexToShards(indexFile, outDir, { shard_size: 4, shard_bytes: null, compression: 'gzip' }, { warn: () => undefined });
  fs.rmSync(work, { recursive: true, force: true });
}

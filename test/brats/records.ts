// Test helper: BraTS patients → a shards folder through tfrecord.write's own conversion (encodeBratsSample in
// lib/datasets/brats.ts), so preprocess.brats and the adapter read exactly the records a pipeline gives them.
import fs from 'node:fs';
import path from 'node:path';
import { convertIndexToShards } from '../../stages/tfrecord-write/convert.js';
import { DEFAULT_LABEL_MAP, DEFAULT_MODALITIES, ingestBrats, type BratsIndex, type BratsSample } from '../../lib/datasets/brats/ingest.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';

export async function writeBratsRecords(index: Pick<BratsIndex, 'root' | 'samples' | 'labels'>, outDir: string): Promise<void> {
  const work = makeTempDir('flow-brats-index-');
  const indexFile = path.join(work, 'index.json');
  fs.writeFileSync(indexFile, JSON.stringify({ dataset: 'brats', root: index.root, labels: index.labels, samples: index.samples, skipped: [], files: {} }));
  await convertIndexToShards(indexFile, outDir, { shard_size: 4, shard_bytes: null, compression: 'gzip' }, { warn: () => undefined });
  fs.rmSync(work, { recursive: true, force: true });
}

/** The shipped BraTS sample's patients that `keep` selects, ingested and written as records in a temp folder. */
export async function sampleRecords(keep: (sample: BratsSample) => boolean): Promise<{ index: BratsIndex; recordsDir: string }> {
  const result = await ingestBrats(path.join(samplesDir, 'brats'), { strict: true, label_map: DEFAULT_LABEL_MAP, modalities: DEFAULT_MODALITIES });
  const index = { ...result!.index, samples: result!.index.samples.filter(keep) };
  const recordsDir = path.join(makeTempDir(), 'records');
  await writeBratsRecords(index, recordsDir);
  return { index, recordsDir };
}

// Test helper: Carvana raw folder → a shards folder through tfrecord.write's own conversion, so
// preprocess.2d and the adapter read exactly the TFRecord files a pipeline gives them. `edit` rewrites
// the converted Examples (e.g. drops a mask) to make bad records.
import fs from 'node:fs';
import path from 'node:path';
import { convertIndexToShards } from '../../stages/tfrecord-write/convert.js';
import { encodeExample, type Features } from '../../lib/tfrecord/example.js';
import { TFRecordShardWriter } from '../../lib/tfrecord/writer.js';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { readExamples, readRecordSpec } from '../../lib/tfrecord/spec.js';
import type { CarvanaIndexSample } from '../../lib/datasets/carvana/index.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';
import { makeTempDir } from '../helpers/paths.js';

export async function writeCarvanaShards(
  root: string,
  samples: CarvanaIndexSample[],
  dir: string,
  options: { edit?: (features: Features, at: number) => void } = {},
): Promise<void> {
  const work = makeTempDir('flow-carvana-index-');
  const indexFile = path.join(work, 'index.json');
  fs.writeFileSync(indexFile, JSON.stringify({ dataset: 'carvana', root, labels: CARVANA_LABELS, samples, skipped: [], files: {} }));
  const target = options.edit === undefined ? dir : path.join(work, 'shards');
  await convertIndexToShards(indexFile, target, { shard_size: 40, shard_bytes: null, compression: 'gzip' }, { warn: () => undefined });
  if (options.edit !== undefined) {
    const spec = await readRecordSpec(target);
    const writer = await TFRecordShardWriter.create(dir, { compression: spec.compression, shardRecords: 40 });
    let at = 0;
    for await (const view of readExamples(target)) {
      options.edit(view.features, at++);
      await writer.write(encodeExample(view.features));
    }
    const features = Object.fromEntries(Object.entries(spec.features).map(([name, f]) => [name, name.startsWith('mask/') ? { ...f, optional: true } : f]));
    await writeJsonAtomic(path.join(dir, 'spec.json'), { ...spec, shards: await writer.close(), features });
  }
  fs.rmSync(work, { recursive: true, force: true });
}

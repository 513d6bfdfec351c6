// Test helper: Carvana raw folder → a shards folder in tfrecord.write's format (through the same
// encodeCarvanaSample tfrecord.write uses), so preprocess.2d and the adapter read real TFRecord files.
import path from 'node:path';
import { encodeExample, type Features } from '../../lib/tfrecord/example.js';
import { TFRecordShardWriter, writeJsonAtomic } from '../../lib/tfrecord/writer.js';
import type { TFRecordSpec } from '../../lib/tfrecord/spec.js';
import { carvanaFeatureSpec, encodeCarvanaSample, type CarvanaIndexSample } from '../../lib/datasets/carvana.js';
import type { Compression } from '../../lib/tfrecord/framing.js';

export async function writeCarvanaShards(
  root: string,
  samples: CarvanaIndexSample[],
  dir: string,
  options: { compression?: Compression; shardRecords?: number; edit?: (features: Features, at: number) => void } = {},
): Promise<void> {
  const compression = options.compression ?? 'gzip';
  const writer = await TFRecordShardWriter.create(dir, { compression, shardRecords: options.shardRecords ?? 40 });
  const features = { ...carvanaFeatureSpec };
  for (const [at, sample] of samples.entries()) {
    const example = await encodeCarvanaSample(root, sample);
    options.edit?.(example, at);
    if (!('mask/encoded' in example)) for (const name of ['mask/encoded', 'mask/height', 'mask/width']) features[name] = { ...features[name]!, optional: true };
    await writer.write(encodeExample(example));
  }
  const shards = await writer.close();
  const spec: TFRecordSpec = { format: 'tf.train.Example', dataset: 'carvana', compression, records: samples.length, shards, features };
  await writeJsonAtomic(path.join(dir, 'spec.json'), spec);
}

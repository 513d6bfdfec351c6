// Converts an ingest index.json into TFRecord shards of tf.train.Example (docs/contracts.md), one sample in
// memory at a time, and writes spec.json last. Kept apart from the stage wrapper so the bench can drive it.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { encodeExample, getString, type Features } from '../../lib/tfrecord/example.js';
import { TFRecordShardWriter } from '../../lib/tfrecord/writer.js';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { SPEC_FILE, type TFRecordSpec } from '../../lib/tfrecord/spec.js';
import { parseShardName, type Compression } from '../../lib/tfrecord/framing.js';
import { carvanaFeatureSpec, encodeCarvanaSample, type CarvanaIndexSample } from '../../lib/datasets/carvana.js';
import { bratsFeatureSpec, encodeBratsSample, type BratsIndexSample } from '../../lib/datasets/brats.js';

export interface TFRecordWriteParams {
  shard_size: number;
  shard_bytes: number | null;
  compression: Compression;
}

interface IngestIndex {
  dataset: 'carvana' | 'brats';
  root: string;
  samples: Array<CarvanaIndexSample | BratsIndexSample>;
}

export interface ConvertHooks {
  /** A problem that did not stop the conversion (e.g. a JPEG-saved mask that had to be thresholded). */
  warn(message: string): void;
  /** Called after each sample. */
  progress?(done: number, total: number): void;
  /** Checked between samples; when aborted, the shards written so far are removed and null returned. */
  signal?: AbortSignal;
}

/** Reads and checks the ingest index.json. */
export async function readIngestIndex(file: string): Promise<IngestIndex> {
  let index: IngestIndex;
  try {
    index = JSON.parse(await fsp.readFile(file, 'utf8')) as IngestIndex;
  } catch (err) {
    throw new Error(`${file}: cannot read the ingest index (${(err as Error).message}); re-run the ingest stage`);
  }
  if (index.dataset !== 'carvana' && index.dataset !== 'brats') {
    throw new Error(`${file}: dataset is ${JSON.stringify(index.dataset)}; tfrecord.write knows "carvana" and "brats"`);
  }
  if (typeof index.root !== 'string' || !Array.isArray(index.samples)) {
    throw new Error(`${file}: not an ingest index (needs "root" and "samples")`);
  }
  index.samples.forEach((s, i) => {
    const ok =
      typeof s?.id === 'string' &&
      typeof s.group === 'string' &&
      (index.dataset === 'carvana'
        ? typeof (s as CarvanaIndexSample).image === 'string' && typeof (s as CarvanaIndexSample).label === 'string'
        : typeof (s as BratsIndexSample).images === 'object' && (s as BratsIndexSample).images !== null);
    if (!ok) throw new Error(`${file}: samples[${i}] is not a ${index.dataset} sample (see docs/contracts.md); re-run the ingest stage`);
  });
  return index;
}

/**
 * Writes the shards and spec.json of `indexFile` into `outDir`. On any error the shards written so far are
 * removed (nothing is left that looks complete) and the error, naming the sample and file, is rethrown.
 */
export async function convertIndexToShards(
  indexFile: string,
  outDir: string,
  params: TFRecordWriteParams,
  hooks: ConvertHooks,
): Promise<TFRecordSpec | null> {
  const index = await readIngestIndex(indexFile);
  const writer = await TFRecordShardWriter.create(outDir, {
    compression: params.compression,
    shardRecords: params.shard_size,
    ...(params.shard_bytes ? { shardBytes: params.shard_bytes } : {}),
  });
  const formats = new Set<string>();
  const modalities = index.dataset === 'brats' && index.samples.length > 0 ? Object.keys((index.samples[0] as BratsIndexSample).images) : [];
  let anyUnlabelled = false;
  try {
    for (let i = 0; i < index.samples.length; i++) {
      if (hooks.signal?.aborted) {
        await writer.abort();
        return null;
      }
      let features: Features;
      if (index.dataset === 'carvana') {
        features = await encodeCarvanaSample(index.root, index.samples[i] as CarvanaIndexSample, { warn: hooks.warn });
        formats.add(getString(features, 'image/format'));
      } else {
        const sample = index.samples[i] as BratsIndexSample;
        const keys = Object.keys(sample.images);
        if (keys.join(',') !== modalities.join(',')) {
          throw new Error(`sample '${sample.id}': modalities ${keys.join(', ')} differ from the first sample's ${modalities.join(', ')}; re-run brats.ingest`);
        }
        if (sample.label === null || sample.label === undefined) anyUnlabelled = true;
        features = await encodeBratsSample(index.root, sample, modalities);
      }
      await writer.write(encodeExample(features));
      hooks.progress?.(i + 1, index.samples.length);
    }
    const shards = await writer.close();
    const onlyFormat = formats.size === 1 ? ([...formats][0] as 'jpeg' | 'png') : undefined;
    const spec: TFRecordSpec = {
      format: 'tf.train.Example',
      dataset: index.dataset,
      compression: params.compression,
      records: index.samples.length,
      shards,
      features: index.dataset === 'carvana' ? carvanaFeatureSpec(onlyFormat) : bratsFeatureSpec(modalities.length, anyUnlabelled),
    };
    await writeJsonAtomic(path.join(outDir, SPEC_FILE), spec);
    return spec;
  } catch (err) {
    await writer.abort().catch(() => undefined);
    // Also shards already renamed when close() failed half-way, and any spec.json.
    for (const name of await fsp.readdir(outDir).catch(() => [] as string[])) {
      if (parseShardName(name) || name === SPEC_FILE) await fsp.rm(path.join(outDir, name), { force: true });
    }
    throw new Error(`tfrecord.write (${indexFile}): ${(err as Error).message}`, { cause: err });
  }
}

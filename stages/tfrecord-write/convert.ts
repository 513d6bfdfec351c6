// Converts an ingest index.json into TFRecord shards of tf.train.Example (docs/contracts.md), one sample in
// memory at a time, and writes spec.json last. The dataset kind named by the index (lib/datasets registry)
// encodes each sample; spec.json carries its feature spec and the index's label map. Kept apart from the
// stage wrapper so the bench can drive it.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { encodeExample } from '../../lib/tfrecord/example.js';
import { TFRecordShardWriter } from '../../lib/tfrecord/writer.js';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { SPEC_FILE } from '../../lib/tfrecord/spec.js';
import { parseShardName, type Compression } from '../../lib/tfrecord/framing.js';
import { defineContract, ingestIndexContract, readContract, validateContract, type DatasetRecordSpec, type IngestIndex } from '../../lib/contracts/index.js';
import { getDatasetKind } from '../../lib/datasets/registry.js';

export interface TFRecordWriteParams {
  shard_size: number;
  shard_bytes: number | null;
  compression: Compression;
}

export interface ConvertHooks {
  /** A problem that did not stop the conversion (e.g. a JPEG-saved mask that had to be thresholded). */
  warn(message: string): void;
  /** Called after each sample. */
  progress?(done: number, total: number): void;
  /** Checked between samples; when aborted, the shards written so far are removed and null returned. */
  signal?: AbortSignal;
}

/** Reads and checks the ingest index.json: the common fields, then each sample against its kind's schema. */
export async function readIngestIndex(file: string): Promise<IngestIndex> {
  const index = await readContract(ingestIndexContract, file);
  const kind = getDatasetKind(index.dataset, file);
  const sampleContract = defineContract<unknown>({ name: `${kind.name} sample`, producer: 'the ingest stage', schema: kind.sampleSchema });
  index.samples.forEach((sample, i) => validateContract(sampleContract, sample, `${file}: samples[${i}]`));
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
): Promise<DatasetRecordSpec | null> {
  const index = await readIngestIndex(indexFile);
  const encoder = getDatasetKind(index.dataset, indexFile).encoder(index);
  const writer = await TFRecordShardWriter.create(outDir, {
    compression: params.compression,
    shardRecords: params.shard_size,
    ...(params.shard_bytes ? { shardBytes: params.shard_bytes } : {}),
  });
  try {
    for (let i = 0; i < index.samples.length; i++) {
      if (hooks.signal?.aborted) {
        await writer.abort();
        return null;
      }
      await writer.write(encodeExample(await encoder.encode(index.samples[i], { warn: hooks.warn })));
      hooks.progress?.(i + 1, index.samples.length);
    }
    const shards = await writer.close();
    const spec: DatasetRecordSpec = {
      format: 'tf.train.Example',
      dataset: index.dataset,
      compression: params.compression,
      records: index.samples.length,
      shards,
      features: encoder.features(),
      labels: index.labels,
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

// Converts an ingest index.json into TFRecord shards of tf.train.Example (docs/contracts.md), one sample in
// memory at a time, and writes spec.json last. Kept apart from the stage wrapper so the bench can drive it.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { bytesFeature, encodeExample, floatFeature, int64Feature, type Features } from '../../lib/tfrecord/example.js';
import { TFRecordShardWriter, writeJsonAtomic } from '../../lib/tfrecord/writer.js';
import { SPEC_FILE, type FeatureSpec, type TFRecordSpec } from '../../lib/tfrecord/spec.js';
import { parseShardName, type Compression } from '../../lib/tfrecord/framing.js';
import { decodeMask, encodePng, readImageInfo } from '../../lib/image/index.js';
import { readNifti } from '../../lib/nifti/read.js';

export interface TFRecordWriteParams {
  shard_size: number;
  shard_bytes: number | null;
  compression: Compression;
}

interface CarvanaSample {
  id: string;
  group: string;
  image: string;
  label: string;
}
interface BratsSample {
  id: string;
  group: string;
  subset: string;
  images: Record<string, string>;
  label: string | null;
}
interface IngestIndex {
  dataset: 'carvana' | 'brats';
  root: string;
  samples: Array<CarvanaSample | BratsSample>;
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
        ? typeof (s as CarvanaSample).image === 'string' && typeof (s as CarvanaSample).label === 'string'
        : typeof (s as BratsSample).images === 'object' && (s as BratsSample).images !== null);
    if (!ok) throw new Error(`${file}: samples[${i}] is not a ${index.dataset} sample (see docs/contracts.md); re-run the ingest stage`);
  });
  return index;
}

const utf8: FeatureSpec = { type: 'bytes', shape: [1], encoding: 'utf8' };
const scalarInt: FeatureSpec = { type: 'int64', shape: [1] };

async function carvanaExample(root: string, sample: CarvanaSample, hooks: ConvertHooks): Promise<{ features: Features; format: string }> {
  const imageFile = path.resolve(root, sample.image);
  const maskFile = path.resolve(root, sample.label);
  let imageBytes: Uint8Array;
  try {
    imageBytes = await fsp.readFile(imageFile);
  } catch (err) {
    throw new Error(`sample '${sample.id}': cannot read ${imageFile} (${(err as Error).message}); re-run the ingest stage if the raw data changed`);
  }
  const info = await readImageInfo(imageBytes, imageFile);
  if (info.format !== 'jpeg' && info.format !== 'png') {
    throw new Error(`sample '${sample.id}': ${imageFile} is ${info.format}; image/encoded must be JPEG or PNG`);
  }
  const decoded = await decodeMask(maskFile, { label: maskFile });
  if (decoded.mask.width !== info.width || decoded.mask.height !== info.height) {
    throw new Error(
      `sample '${sample.id}': mask ${maskFile} is ${decoded.mask.width}x${decoded.mask.height} but image ${imageFile} is ${info.width}x${info.height}; re-run the ingest stage`,
    );
  }
  if (decoded.nonBinary > 0) {
    hooks.warn(`${maskFile}: ${decoded.nonBinary} pixels were neither 0 nor 255 (a mask re-saved as JPEG?); thresholded at 128`);
  }
  const maskPng = await encodePng(decoded.mask);
  return {
    format: info.format,
    features: {
      id: bytesFeature(sample.id),
      group: bytesFeature(sample.group),
      'image/encoded': bytesFeature(imageBytes),
      'image/format': bytesFeature(info.format),
      'image/height': int64Feature(info.height),
      'image/width': int64Feature(info.width),
      'mask/encoded': bytesFeature(maskPng),
      'mask/height': int64Feature(decoded.mask.height),
      'mask/width': int64Feature(decoded.mask.width),
    },
  };
}

function sameDims(a: number[], b: number[]): boolean {
  return a.length >= 3 && b.length >= 3 && a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

async function bratsExample(root: string, sample: BratsSample, modalities: string[]): Promise<Features> {
  const volumes = [];
  for (const m of modalities) {
    const rel = sample.images[m];
    if (typeof rel !== 'string') throw new Error(`sample '${sample.id}': modality ${m} is missing from the index; re-run brats.ingest`);
    volumes.push(await readNifti(path.resolve(root, rel)));
  }
  const first = volumes[0]!;
  const [X, Y, Z] = first.dims as [number, number, number];
  const voxels = X * Y * Z;
  for (const v of volumes) {
    if (!sameDims(v.dims, first.dims) || v.data.length < voxels) {
      throw new Error(`sample '${sample.id}': ${v.file} is ${v.dims.slice(0, 3).join('x')} but ${first.file} is ${first.dims.slice(0, 3).join('x')}; modalities must match`);
    }
  }
  // [M][Z][Y][X], x fastest: NIfTI already stores x fastest, so each modality is one contiguous block.
  const data = new Float32Array(voxels * volumes.length);
  volumes.forEach((v, i) => data.set(v.data.subarray(0, voxels), i * voxels));
  const features: Features = {
    id: bytesFeature(sample.id),
    group: bytesFeature(sample.group),
    subset: bytesFeature(sample.subset),
    'volume/shape': int64Feature([X, Y, Z]),
    'volume/modalities': bytesFeature(modalities),
    'volume/data': bytesFeature(new Uint8Array(data.buffer)),
    'volume/spacing': floatFeature(first.spacing.slice(0, 3)),
    'volume/affine': floatFeature(first.affine),
  };
  if (sample.label !== null && sample.label !== undefined) {
    const seg = await readNifti(path.resolve(root, sample.label));
    if (!sameDims(seg.dims, first.dims)) {
      throw new Error(`sample '${sample.id}': label ${seg.file} is ${seg.dims.slice(0, 3).join('x')} but ${first.file} is ${X}x${Y}x${Z}`);
    }
    const labels = new Uint8Array(voxels);
    for (let i = 0; i < voxels; i++) {
      const value = seg.data[i]!;
      if (!Number.isInteger(value) || value < 0 || value > 255) {
        throw new Error(`sample '${sample.id}': label ${seg.file} holds ${value} at voxel ${i}; labels must be integers 0..255`);
      }
      labels[i] = value;
    }
    features['label/data'] = bytesFeature(labels);
  }
  return features;
}

function carvanaFeatureSpec(encoding: 'jpeg' | 'png' | undefined): Record<string, FeatureSpec> {
  return {
    id: utf8,
    group: utf8,
    'image/encoded': encoding ? { type: 'bytes', shape: [1], encoding } : { type: 'bytes', shape: [1] },
    'image/format': utf8,
    'image/height': scalarInt,
    'image/width': scalarInt,
    'mask/encoded': { type: 'bytes', shape: [1], encoding: 'png' },
    'mask/height': scalarInt,
    'mask/width': scalarInt,
  };
}

function bratsFeatureSpec(modalities: number, anyUnlabelled: boolean): Record<string, FeatureSpec> {
  return {
    id: utf8,
    group: utf8,
    subset: utf8,
    'volume/shape': { type: 'int64', shape: [3] },
    'volume/modalities': { type: 'bytes', shape: [modalities], encoding: 'utf8' },
    'volume/data': { type: 'bytes', shape: [1], dtype: 'float32', encoding: 'raw-le' },
    'volume/spacing': { type: 'float', shape: [3] },
    'volume/affine': { type: 'float', shape: [16] },
    'label/data': { type: 'bytes', shape: [1], dtype: 'uint8', encoding: 'raw-le', ...(anyUnlabelled ? { optional: true } : {}) },
  };
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
  const modalities = index.dataset === 'brats' && index.samples.length > 0 ? Object.keys((index.samples[0] as BratsSample).images) : [];
  let anyUnlabelled = false;
  try {
    for (let i = 0; i < index.samples.length; i++) {
      if (hooks.signal?.aborted) {
        await writer.abort();
        return null;
      }
      let features: Features;
      if (index.dataset === 'carvana') {
        const made = await carvanaExample(index.root, index.samples[i] as CarvanaSample, hooks);
        formats.add(made.format);
        features = made.features;
      } else {
        const sample = index.samples[i] as BratsSample;
        const keys = Object.keys(sample.images);
        if (keys.join(',') !== modalities.join(',')) {
          throw new Error(`sample '${sample.id}': modalities ${keys.join(', ')} differ from the first sample's ${modalities.join(', ')}; re-run brats.ingest`);
        }
        if (sample.label === null || sample.label === undefined) anyUnlabelled = true;
        features = await bratsExample(index.root, sample, modalities);
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

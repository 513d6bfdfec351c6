// Everything Carvana-specific about records: how one ingest sample becomes a tf.train.Example, how an
// Example is read back (for preprocess.2d), and the DatasetAdapter predict uses to feed the model exactly
// as training did and to turn its output into 0/255 PNG masks at the original size.
// tfrecord.write (stages/tfrecord-write/convert.ts) builds its Carvana records and spec with these.
import fs from 'node:fs';
import path from 'node:path';
import type { JsonObject } from '../../engine/stage.js';
import type { DatasetAdapter, Decision, LabelMap, PreparedCase, RgbImage } from './adapter.js';
import {
  bytesFeature,
  getBytes,
  getInt,
  getString,
  int64Feature,
  type Feature,
  type Features,
} from '../tfrecord/example.js';
import type { FeatureSpec } from '../tfrecord/spec.js';
import { decodeMask, decodeRgb, encodePng, readImageInfo, resizeRaw } from '../image/index.js';
import { parseTransform2d, preparePhoto } from '../preprocess/image2d.js';

/** An ingest index sample (docs/contracts.md). */
export interface CarvanaIndexSample {
  id: string;
  group: string;
  image: string;
  label: string;
}

/**
 * The Carvana features of tfrecord.write's spec.json. `imageEncoding` is the format of every photo, or
 * undefined when the set mixes JPEG and PNG (the spec then names no single encoding).
 */
export function carvanaFeatureSpec(imageEncoding: 'jpeg' | 'png' | undefined): Record<string, FeatureSpec> {
  return {
    id: { type: 'bytes', shape: [1], encoding: 'utf8' },
    group: { type: 'bytes', shape: [1], encoding: 'utf8' },
    'image/encoded': imageEncoding ? { type: 'bytes', shape: [1], encoding: imageEncoding } : { type: 'bytes', shape: [1] },
    'image/format': { type: 'bytes', shape: [1], encoding: 'utf8' },
    'image/height': { type: 'int64', shape: [1] },
    'image/width': { type: 'int64', shape: [1] },
    'mask/encoded': { type: 'bytes', shape: [1], encoding: 'png' },
    'mask/height': { type: 'int64', shape: [1] },
    'mask/width': { type: 'int64', shape: [1] },
  };
}

/**
 * One ingest sample as Example features: the original photo bytes untouched, the mask normalised to a
 * 1-channel 0/255 PNG (Kaggle GIF palettes expanded, JPEG-saved masks thresholded, which `warn` is told).
 * Errors name the sample and the file.
 */
export async function encodeCarvanaSample(
  root: string,
  sample: CarvanaIndexSample,
  options: { warn?: (message: string) => void } = {},
): Promise<Features> {
  const imageFile = path.resolve(root, sample.image);
  const maskFile = path.resolve(root, sample.label);
  let imageBytes: Uint8Array;
  try {
    imageBytes = await fs.promises.readFile(imageFile);
  } catch (err) {
    throw new Error(`sample '${sample.id}': cannot read ${imageFile} (${(err as Error).message}); re-run the ingest stage if the raw data changed`);
  }
  const info = await readImageInfo(imageBytes, imageFile);
  if (info.format !== 'jpeg' && info.format !== 'png') {
    throw new Error(`sample '${sample.id}': ${imageFile} is ${info.format}; image/encoded must be JPEG or PNG`);
  }
  const { mask, nonBinary } = await decodeMask(maskFile, { label: maskFile });
  if (mask.width !== info.width || mask.height !== info.height) {
    throw new Error(
      `sample '${sample.id}': mask ${maskFile} is ${mask.width}x${mask.height} but image ${imageFile} is ${info.width}x${info.height}; re-run the ingest stage`,
    );
  }
  if (nonBinary > 0) options.warn?.(`${maskFile}: ${nonBinary} pixels were neither 0 nor 255 (a mask re-saved as JPEG?); thresholded at 128`);
  return {
    id: bytesFeature(sample.id),
    group: bytesFeature(sample.group),
    'image/encoded': bytesFeature(imageBytes),
    'image/format': bytesFeature(info.format),
    'image/height': int64Feature(info.height),
    'image/width': int64Feature(info.width),
    'mask/encoded': bytesFeature(await encodePng(mask)),
    'mask/height': int64Feature(mask.height),
    'mask/width': int64Feature(mask.width),
  };
}

/** The fields of one Carvana Example; `mask` is null when the record has none. */
export interface CarvanaRecord {
  id: string;
  group: string;
  image: Uint8Array;
  height: number;
  width: number;
  mask: Uint8Array | null;
}

export function readCarvanaRecord(features: Features): CarvanaRecord {
  const hasMask = Object.prototype.hasOwnProperty.call(features, 'mask/encoded') && features['mask/encoded']!.kind === 'bytes';
  return {
    id: getString(features, 'id'),
    group: getString(features, 'group'),
    image: getBytes(features, 'image/encoded'),
    height: getInt(features, 'image/height'),
    width: getInt(features, 'image/width'),
    mask: hasMask ? getBytes(features, 'mask/encoded') : null,
  };
}

/** A pixel is car where the model's sigmoid probability exceeds this. */
const CAR_THRESHOLD = 0.5;

// The photo bytes behind each prepared case, for `background` (kept out of the JSON context).
const photos = new WeakMap<PreparedCase, Uint8Array>();

export const carvanaAdapter: DatasetAdapter = {
  dataset: 'carvana',
  labelValues: [0, 255],
  format: 'png',
  extension: '.png',

  async prepare(example: Record<string, Feature>, transformJson: JsonObject): Promise<PreparedCase> {
    const transform = parseTransform2d(transformJson, 'transform.json');
    const record = readCarvanaRecord(example);
    const x = await preparePhoto(record.image, transform, `record ${record.id}: image/encoded`);
    let label: LabelMap | null = null;
    if (record.mask !== null) {
      const { mask } = await decodeMask(record.mask, { label: `record ${record.id}: mask/encoded` });
      label = { data: mask.data, shape: [mask.height, mask.width], spacing: [1, 1] };
    }
    const prepared: PreparedCase = {
      id: record.id,
      x,
      count: 1,
      itemShape: [transform.size[0], transform.size[1], 3],
      label,
      context: { group: record.group, height: record.height, width: record.width },
    };
    photos.set(prepared, record.image);
    return prepared;
  },

  async restore(probabilities: Float32Array, channels: number, prepared: PreparedCase, transformJson: JsonObject): Promise<LabelMap> {
    const transform = parseTransform2d(transformJson, 'transform.json');
    const [h, w] = transform.size;
    if (channels !== 1) throw new Error(`carvana: expected 1 sigmoid channel from the model, got ${channels}`);
    if (probabilities.length !== h * w) throw new Error(`carvana: ${probabilities.length} probabilities for case ${prepared.id}, expected ${h}x${w}`);
    const binary = new Uint8Array(h * w);
    for (let i = 0; i < binary.length; i++) binary[i] = probabilities[i]! > CAR_THRESHOLD ? 255 : 0;
    const height = prepared.context.height as number;
    const width = prepared.context.width as number;
    // Bilinear upsampling of the 0/255 map then > 127: smooth edges instead of nearest's blocks.
    const up = height === h && width === w ? binary : (await resizeRaw({ data: binary, width: w, height: h, channels: 1 }, [height, width], 'linear')).data;
    const data = new Uint8Array(height * width);
    for (let i = 0; i < data.length; i++) data[i] = up[i]! > 127 ? 255 : 0;
    return { data, shape: [height, width], spacing: [1, 1] };
  },

  // One rule whatever the channels: restore refuses anything but one sigmoid channel.
  decision(): Decision {
    return { rule: `sigmoid probability > ${CAR_THRESHOLD}`, threshold: CAR_THRESHOLD };
  },

  async write(map: LabelMap, _prepared: PreparedCase, file: string): Promise<void> {
    const [height, width] = map.shape as [number, number];
    const png = await encodePng({ data: map.data, width, height, channels: 1 });
    const temp = `${file}.tmp-${process.pid}`;
    await fs.promises.writeFile(temp, png);
    await fs.promises.rename(temp, file);
  },

  async background(prepared: PreparedCase): Promise<RgbImage> {
    const photo = photos.get(prepared);
    if (photo === undefined) throw new Error(`carvana.background: case ${prepared.id} was not prepared by this adapter`);
    const size: [number, number] = prepared.label !== null ? [prepared.label.shape[0]!, prepared.label.shape[1]!] : [prepared.context.height as number, prepared.context.width as number];
    const rgb = await decodeRgb(photo, { size, kernel: 'linear', label: `case ${prepared.id}` });
    return { data: rgb.data, width: rgb.width, height: rgb.height };
  },
};

export default carvanaAdapter;

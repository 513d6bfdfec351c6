// The 2D record layout every picture-and-mask dataset kind writes (Carvana, image pairs): the picture's own
// bytes (JPEG/PNG kept as they are, other formats stored as lossless PNG), and the mask as a 1-channel PNG of
// the dataset's stored label values. preprocess.2d and the 2D adapter read these; the kind's ingest and
// encoder decide how a raw mask becomes stored values (Carvana: GIF palette → 0/255).
import fs from 'node:fs';
import { bytesFeature, getBytes, getInt, getString, int64Feature, type Features } from '../../tfrecord/example.js';
import type { FeatureSpec } from '../../tfrecord/spec.js';
import { decodeRgb, encodePng, readImageInfo, type RawImage } from '../../image/index.js';

/**
 * The features of tfrecord.write's spec.json. `imageEncoding` is the format of every picture, or undefined
 * when the set mixes JPEG and PNG (the spec then names no single encoding).
 */
export function image2dFeatureSpec(imageEncoding: 'jpeg' | 'png' | undefined): Record<string, FeatureSpec> {
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

/** A picture's bytes as records keep them: JPEG/PNG untouched, anything else (TIFF, GIF, BMP ...) as PNG. */
export async function pictureBytes(file: string, sampleId: string): Promise<{ bytes: Uint8Array; format: 'jpeg' | 'png'; width: number; height: number }> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    throw new Error(`sample '${sampleId}': cannot read ${file} (${(err as Error).message}); re-run the ingest stage if the raw data changed`);
  }
  const info = await readImageInfo(bytes, file);
  if (info.format === 'jpeg' || info.format === 'png') return { bytes, format: info.format, width: info.width, height: info.height };
  const rgb = await decodeRgb(bytes, { label: file });
  return { bytes: await encodePng(rgb), format: 'png', width: rgb.width, height: rgb.height };
}

/** One 2D case as Example features; `mask` holds stored label values. */
export async function image2dFeatures(
  sample: { id: string; group: string },
  picture: { bytes: Uint8Array; format: string; width: number; height: number },
  mask: RawImage,
  files: { image: string; mask: string },
): Promise<Features> {
  if (mask.width !== picture.width || mask.height !== picture.height) {
    throw new Error(`sample '${sample.id}': mask ${files.mask} is ${mask.width}x${mask.height} but image ${files.image} is ${picture.width}x${picture.height}; re-run the ingest stage`);
  }
  return {
    id: bytesFeature(sample.id),
    group: bytesFeature(sample.group),
    'image/encoded': bytesFeature(picture.bytes),
    'image/format': bytesFeature(picture.format),
    'image/height': int64Feature(picture.height),
    'image/width': int64Feature(picture.width),
    'mask/encoded': bytesFeature(await encodePng(mask)),
    'mask/height': int64Feature(mask.height),
    'mask/width': int64Feature(mask.width),
  };
}

/** The fields of one 2D Example; `mask` is null when the record has none. */
export interface Image2dRecord {
  id: string;
  group: string;
  image: Uint8Array;
  height: number;
  width: number;
  mask: Uint8Array | null;
  /** `train` or `test` (official test list) for kinds that record it; null for the others (Carvana). */
  subset: string | null;
}

export function readImage2dRecord(features: Features): Image2dRecord {
  const hasMask = Object.prototype.hasOwnProperty.call(features, 'mask/encoded') && features['mask/encoded']!.kind === 'bytes';
  return {
    id: getString(features, 'id'),
    group: getString(features, 'group'),
    image: getBytes(features, 'image/encoded'),
    height: getInt(features, 'image/height'),
    width: getInt(features, 'image/width'),
    mask: hasMask ? getBytes(features, 'mask/encoded') : null,
    subset: features.subset !== undefined ? getString(features, 'subset') : null,
  };
}

// The predict adapter of every 2D kind (Carvana, image pairs): feeds one record to the model exactly as
// preprocess.2d fed training, and turns the model's output into a PNG mask at the picture's original size in
// the dataset's own label values (from the label map in transform.json).
import fs from 'node:fs';
import type { JsonObject } from '../../../engine/stage.js';
import type { Feature } from '../../tfrecord/example.js';
import { decodeGray, decodeRgb, encodePng, MASK_THRESHOLD, resizeRaw } from '../../image/index.js';
import { parseTransform2d, preparePhoto } from '../../preprocess/image2d.js';
import { argmaxClasses } from '../../preprocess/brats.js';
import type { LabelSpec } from '../../contracts/labels.js';
import type { DatasetAdapter, Decision, LabelMap, PreparedCase, RgbImage } from '../dataset.js';
import { readImage2dRecord } from './records.js';

/** A pixel is foreground where the model's sigmoid probability exceeds this (binary label maps). */
export const SIGMOID_THRESHOLD = 0.5;

// The picture bytes behind each prepared case, for `background` (kept out of the JSON context).
const photos = new WeakMap<PreparedCase, Uint8Array>();

async function restoreBinary(probabilities: Float32Array, size: [number, number], target: [number, number], labels: LabelSpec): Promise<Uint8Array> {
  const [h, w] = size;
  const binary = new Uint8Array(h * w);
  for (let i = 0; i < binary.length; i++) binary[i] = probabilities[i]! > SIGMOID_THRESHOLD ? 255 : 0;
  const [height, width] = target;
  // Bilinear upsampling of the 0/255 map, then the mask threshold: smooth edges instead of nearest's blocks.
  const up = height === h && width === w ? binary : (await resizeRaw({ data: binary, width: w, height: h, channels: 1 }, [height, width], 'linear')).data;
  const background = labels.classes[0]!.value;
  const foreground = labels.classes[1]!.value;
  const data = new Uint8Array(height * width);
  for (let i = 0; i < data.length; i++) data[i] = up[i]! > MASK_THRESHOLD ? foreground : background;
  return data;
}

async function restoreClasses(probabilities: Float32Array, channels: number, size: [number, number], target: [number, number], labels: LabelSpec): Promise<Uint8Array> {
  const [h, w] = size;
  const classes = argmaxClasses(probabilities, channels);
  const [height, width] = target;
  const up = height === h && width === w ? classes : (await resizeRaw({ data: classes, width: w, height: h, channels: 1 }, [height, width], 'nearest')).data;
  const values = labels.classes.map((c) => c.value);
  const data = new Uint8Array(height * width);
  for (let i = 0; i < data.length; i++) data[i] = values[up[i]!]!;
  return data;
}

export const image2dAdapter: DatasetAdapter = {
  format: 'png',
  extension: '.png',

  async prepare(example: Record<string, Feature>, transformJson: JsonObject): Promise<PreparedCase> {
    const transform = parseTransform2d(transformJson, 'transform.json');
    const record = readImage2dRecord(example);
    const x = await preparePhoto(record.image, transform, `record ${record.id}: image/encoded`);
    let label: LabelMap | null = null;
    if (record.mask !== null) {
      const mask = await decodeGray(record.mask, { label: `record ${record.id}: mask/encoded` });
      label = { data: mask.data, shape: [mask.height, mask.width], spacing: [1, 1] };
    }
    const prepared: PreparedCase = {
      id: record.id,
      x,
      count: 1,
      itemShape: [transform.size[0], transform.size[1], transform.channels],
      label,
      context: { group: record.group, height: record.height, width: record.width },
    };
    photos.set(prepared, record.image);
    return prepared;
  },

  async restore(probabilities: Float32Array, channels: number, prepared: PreparedCase, transformJson: JsonObject): Promise<LabelMap> {
    const transform = parseTransform2d(transformJson, 'transform.json');
    const [h, w] = transform.size;
    const classes = transform.labels.classes.length;
    const expected = classes === 2 ? 1 : classes;
    if (channels !== expected) {
      throw new Error(`case ${prepared.id}: the model gives ${channels} channel(s) but the label map has ${classes} classes (needs ${expected}); build the model with classes: ${expected}`);
    }
    if (probabilities.length !== h * w * channels) throw new Error(`case ${prepared.id}: ${probabilities.length} probabilities, expected ${h}x${w}x${channels}`);
    const target: [number, number] = [prepared.context.height as number, prepared.context.width as number];
    const data = channels === 1
      ? await restoreBinary(probabilities, [h, w], target, transform.labels)
      : await restoreClasses(probabilities, channels, [h, w], target, transform.labels);
    return { data, shape: target, spacing: [1, 1] };
  },

  decision(channels: number): Decision {
    return channels === 1
      ? { rule: `sigmoid probability > ${SIGMOID_THRESHOLD}`, threshold: SIGMOID_THRESHOLD }
      : { rule: 'argmax over the softmax channels', threshold: null };
  },

  labels(transform: JsonObject): LabelSpec {
    return parseTransform2d(transform, 'transform.json').labels;
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
    if (photo === undefined) throw new Error(`image2d.background: case ${prepared.id} was not prepared by this adapter`);
    const size: [number, number] = [prepared.context.height as number, prepared.context.width as number];
    const rgb = await decodeRgb(photo, { size, kernel: 'linear', label: `case ${prepared.id}` });
    return { data: rgb.data, width: rgb.width, height: rgb.height };
  },
};

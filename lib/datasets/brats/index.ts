// Everything BraTS-specific about records: how one ingest patient becomes a tf.train.Example (used by
// tfrecord.write) and the DatasetAdapter that replays preprocess.brats on one record for predict (slices2d:
// every axial slice of the brain box; patches3d: the tiles that cover the brain box) and maps predictions back
// to the patient's own grid, label values and NIfTI geometry.
import path from 'node:path';
import type { JsonObject } from '../../../engine/stage.js';
import { bytesFeature, floatFeature, int64Feature, type Feature, type Features } from '../../tfrecord/example.js';
import type { FeatureSpec } from '../../tfrecord/spec.js';
import { readNifti, sameDims3d, type NiftiVolume } from '../../nifti/read.js';
import { channelVolume } from '../volumes/read.js';
import { writeNifti } from '../../nifti/write.js';
import { bratsTransformContract, validateContract, type IngestIndex, type LabelSpec } from '../../contracts/index.js';
import {
  argmaxClasses,
  BOX_TILING,
  brainBoundingBox,
  clipChannels,
  decodeBratsExample,
  DEFAULT_TRAIN_LABEL_MAP,
  extractPatch,
  invertLabelMap,
  modalityOrder,
  SINGLE_CHANNEL_THRESHOLD,
  sliceInput,
  stitchTiles,
  tilePatches,
  uncropBox,
  uncropSlices,
  zscoreBrain,
  type BrainBox,
  type LabelRemap,
} from '../../preprocess/brats.js';
import type { DatasetAdapter, DatasetKind, Decision, LabelMap, PreparedCase, RecordEncoder, RgbImage } from '../dataset.js';

/** An ingest index patient (docs/contracts.md). */
export interface BratsIndexSample {
  id: string;
  group: string;
  subset: string;
  images: Record<string, string>;
  label: string | null;
}

/**
 * One ingest patient as Example features (docs/contracts.md "BraTS features"): the `modalities` volumes as
 * float32 `[M][Z][Y][X]`, geometry from the first modality, and the seg as uint8 in its original label values
 * (absent for Validation patients). Errors name the patient and the file.
 */
export async function encodeBratsSample(root: string, sample: BratsIndexSample, modalities: string[]): Promise<Features> {
  const volumes = [];
  const read = new Map<string, Promise<NiftiVolume>>();
  for (const m of modalities) {
    const rel = sample.images[m];
    if (typeof rel !== 'string') throw new Error(`sample '${sample.id}': modality ${m} is missing from the index; re-run the ingest stage`);
    volumes.push(await channelVolume(root, rel, read));
  }
  const first = volumes[0]!;
  const [X, Y, Z] = first.dims as [number, number, number];
  const voxels = X * Y * Z;
  for (const v of volumes) {
    if (!sameDims3d(v.dims, first.dims) || v.data.length < voxels) {
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
    if (!sameDims3d(seg.dims, first.dims)) {
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

/** The BraTS features of tfrecord.write's spec.json; `label/data` is optional when any patient has no seg. */
export function bratsFeatureSpec(modalities: number, anyUnlabelled: boolean): Record<string, FeatureSpec> {
  const utf8: FeatureSpec = { type: 'bytes', shape: [1], encoding: 'utf8' };
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

interface BratsTransformCommon {
  modalities: string[];
  labelMap: LabelRemap;
  labels: LabelSpec;
  clip: Record<string, [number, number]> | null;
}
type BratsTransform =
  | (BratsTransformCommon & { mode: 'slices2d'; size: [number, number] })
  | (BratsTransformCommon & { mode: 'patches3d'; patch: [number, number, number] });

function readTransform(transform: JsonObject): BratsTransform {
  const t = validateContract(bratsTransformContract, transform, 'transform.json');
  const common: BratsTransformCommon = { modalities: t.modalities, labelMap: t.labelMap.train ?? DEFAULT_TRAIN_LABEL_MAP, labels: t.labels, clip: t.clip ?? null };
  if (t.mode === 'slices2d') return { ...common, mode: 'slices2d', size: [t.size![0], t.size![1]] };
  // The tiles predict feeds must be the ones validation measured; an older transform.json has no rule.
  if (t.tiling !== BOX_TILING) {
    throw new Error(`BraTS adapter: transform.json tiling ${JSON.stringify(t.tiling)} is not ${JSON.stringify(BOX_TILING)}; re-run preprocess.brats (version 2 or later) for patches3d`);
  }
  return { ...common, mode: 'patches3d', patch: [t.patch![0], t.patch![1], t.patch![2]] };
}

/** The raw FLAIR of each prepared case, for `background` (kept out of the JSON context: it is a whole volume). */
const flairOf = new WeakMap<PreparedCase, { data: Float32Array; shape: [number, number, number] }>();

function contextBox(prepared: PreparedCase): BrainBox {
  const box = prepared.context.box as { x: number[]; y: number[]; z: number[] } | undefined;
  if (!box) throw new Error(`BraTS adapter: case ${prepared.id} has no crop box in its context (was it prepared by this adapter?)`);
  return { x: [box.x[0]!, box.x[1]!], y: [box.y[0]!, box.y[1]!], z: [box.z[0]!, box.z[1]!] };
}

function contextShape(prepared: PreparedCase): [number, number, number] {
  const shape = prepared.context.shape as number[];
  return [shape[0]!, shape[1]!, shape[2]!];
}

/**
 * patches3d: per-tile softmax (or sigmoid) outputs → averaged where tiles overlap → argmax → dataset label
 * values in the full volume, zero outside the brain box. Errors name the case and what does not fit.
 */
function restoreTiles(
  probabilities: Float32Array,
  channels: number,
  prepared: PreparedCase,
  patch: [number, number, number],
  box: BrainBox,
  shape: [number, number, number],
  inverse: number[],
): Uint8Array {
  const expected = prepared.count * patch[0] * patch[1] * patch[2] * channels;
  if (probabilities.length !== expected) {
    throw new Error(
      `BraTS adapter: case ${prepared.id}: got ${probabilities.length} probabilities, ${prepared.count} tiles of ${patch.join('x')}x${channels} ` +
        `(transform.json patch [${patch.join(', ')}]) need ${expected}; predict with the transform the case was prepared with`,
    );
  }
  const preparedPatch = prepared.context.patch as number[] | undefined;
  if (!preparedPatch || preparedPatch.join('x') !== patch.join('x')) {
    throw new Error(`BraTS adapter: case ${prepared.id} was prepared with patch ${preparedPatch ? `[${preparedPatch.join(', ')}]` : 'none (slices2d?)'} but transform.json has [${patch.join(', ')}]`);
  }
  const starts = tilePatches(box, patch, shape);
  if (starts.length !== prepared.count) {
    throw new Error(`BraTS adapter: case ${prepared.id} holds ${prepared.count} items but its brain box tiles into ${starts.length} patches of ${patch.join('x')}`);
  }
  try {
    const classes = argmaxClasses(stitchTiles(probabilities, channels, starts, patch, box), channels);
    return uncropBox(classes, box, shape, inverse);
  } catch (error) {
    throw new Error(`BraTS adapter: case ${prepared.id}: ${(error as Error).message}`);
  }
}

export const bratsAdapter: DatasetAdapter = {
  format: 'nifti',
  extension: '.nii.gz',

  async prepare(example: Record<string, Feature>, transform: JsonObject): Promise<PreparedCase> {
    const t = readTransform(transform);
    const volume = decodeBratsExample(example);
    const [X, Y, Z] = volume.shape;
    const order = modalityOrder(volume, t.modalities);
    // The panel background: FLAIR for BraTS, else the first channel (nnU-Net / Decathlon cases).
    const flairAt = Math.max(0, volume.modalities.indexOf('flair'));
    const flair = volume.modalities.length > 0 ? volume.data.slice(flairAt * X * Y * Z, (flairAt + 1) * X * Y * Z) : null;
    // An all-zero volume still gets a prediction: the whole volume stands in for the brain box.
    const box = brainBoundingBox(volume) ?? { x: [0, X], y: [0, Y], z: [0, Z] };
    if (t.clip) clipChannels(volume, t.clip);
    zscoreBrain(volume);
    let x: Float32Array;
    let count: number;
    let itemShape: number[];
    if (t.mode === 'slices2d') {
      const per = t.size[0] * t.size[1] * order.length;
      count = box.z[1] - box.z[0];
      x = new Float32Array(count * per);
      for (let k = 0; k < count; k++) x.set(sliceInput(volume, box, box.z[0] + k, order, t.size), k * per);
      itemShape = [t.size[0], t.size[1], order.length];
    } else {
      const starts = tilePatches(box, t.patch, volume.shape);
      const per = t.patch[0] * t.patch[1] * t.patch[2] * order.length;
      count = starts.length;
      x = new Float32Array(count * per);
      for (const [k, start] of starts.entries()) x.set(extractPatch(volume, null, start, t.patch, order).x, k * per);
      itemShape = [...t.patch, order.length];
    }
    const label: LabelMap | null = volume.label
      ? { data: volume.label, shape: [Z, Y, X], spacing: [volume.spacing[2]!, volume.spacing[1]!, volume.spacing[0]!] }
      : null;
    const prepared: PreparedCase = {
      id: volume.id,
      x,
      count,
      itemShape,
      label,
      context: {
        shape: [X, Y, Z],
        box: { x: box.x, y: box.y, z: box.z },
        spacing: volume.spacing,
        affine: volume.affine,
        subset: volume.subset,
        ...(t.mode === 'slices2d' ? { size: t.size } : { patch: t.patch }),
      },
    };
    if (flair) flairOf.set(prepared, { data: flair, shape: [X, Y, Z] });
    return prepared;
  },

  async restore(probabilities: Float32Array, channels: number, prepared: PreparedCase, transform: JsonObject): Promise<LabelMap> {
    const t = readTransform(transform);
    const shape = contextShape(prepared);
    const box = contextBox(prepared);
    let data: Uint8Array;
    if (t.mode === 'slices2d') {
      const expected = prepared.count * t.size[0] * t.size[1] * channels;
      if (probabilities.length !== expected) {
        throw new Error(`BraTS adapter: case ${prepared.id}: got ${probabilities.length} probabilities, ${prepared.count} slices of ${t.size.join('x')}x${channels} need ${expected}`);
      }
      const classes = argmaxClasses(probabilities, channels);
      data = uncropSlices(classes, t.size, box, shape, invertLabelMap(t.labelMap));
    } else {
      data = restoreTiles(probabilities, channels, prepared, t.patch, box, shape, invertLabelMap(t.labelMap));
    }
    const spacing = prepared.context.spacing as number[];
    return { data, shape: [shape[2], shape[1], shape[0]], spacing: [spacing[2]!, spacing[1]!, spacing[0]!] };
  },

  decision(channels: number): Decision {
    return channels === 1
      ? { rule: `sigmoid probability >= ${SINGLE_CHANNEL_THRESHOLD}`, threshold: SINGLE_CHANNEL_THRESHOLD }
      : { rule: 'argmax over the softmax channels', threshold: null };
  },

  labels(transform: JsonObject): LabelSpec {
    return readTransform(transform).labels;
  },

  async write(map: LabelMap, prepared: PreparedCase, file: string): Promise<void> {
    const [Z, Y, X] = map.shape as [number, number, number];
    await writeNifti(file, {
      dims: [X, Y, Z],
      spacing: prepared.context.spacing as number[],
      affine: prepared.context.affine as number[],
      datatype: 'uint8',
      data: map.data,
      description: `flow prediction ${prepared.id}`,
    });
  },

  async background(prepared: PreparedCase, slice: number | null): Promise<RgbImage> {
    const flair = flairOf.get(prepared);
    if (!flair) throw new Error(`BraTS adapter: case ${prepared.id} has no FLAIR volume (prepare it with this adapter in the same process)`);
    const [X, Y, Z] = flair.shape;
    const box = contextBox(prepared);
    const z = slice ?? Math.floor((box.z[0] + box.z[1]) / 2);
    if (!(z >= 0 && z < Z)) throw new Error(`BraTS adapter: case ${prepared.id}: slice ${z} is outside 0..${Z - 1}`);
    const plane = flair.data.subarray(z * X * Y, (z + 1) * X * Y);
    // Window to the 1st..99th percentile of the brain voxels of this slice, as a viewer would.
    const brain = Array.from(plane).filter((v) => v !== 0).sort((a, b) => a - b);
    const lo = brain.length ? brain[Math.floor(brain.length * 0.01)]! : 0;
    const hi = brain.length ? brain[Math.min(brain.length - 1, Math.floor(brain.length * 0.99))]! : 1;
    const range = hi > lo ? hi - lo : 1;
    const data = new Uint8Array(X * Y * 3);
    for (let i = 0; i < X * Y; i++) {
      const v = plane[i] === 0 ? 0 : Math.round(Math.min(1, Math.max(0, (plane[i]! - lo) / range)) * 255);
      data[i * 3] = v;
      data[i * 3 + 1] = v;
      data[i * 3 + 2] = v;
    }
    return { data, width: X, height: Y };
  },
};

function encoder(index: IngestIndex): RecordEncoder {
  const samples = index.samples as BratsIndexSample[];
  const modalities = samples.length > 0 ? Object.keys(samples[0]!.images) : [];
  let anyUnlabelled = false;
  return {
    async encode(sampleValue) {
      const sample = sampleValue as BratsIndexSample;
      const keys = Object.keys(sample.images);
      if (keys.join(',') !== modalities.join(',')) {
        throw new Error(`sample '${sample.id}': modalities ${keys.join(', ')} differ from the first sample's ${modalities.join(', ')}; re-run brats.ingest`);
      }
      if (sample.label === null || sample.label === undefined) anyUnlabelled = true;
      return encodeBratsSample(index.root, sample, modalities);
    },
    features: () => bratsFeatureSpec(modalities.length, anyUnlabelled),
  };
}

/** The BraTS 2019 dataset kind: patients as 4-modality NIfTI volumes, predictions as .nii.gz label maps. */
export const bratsKind: DatasetKind = {
  name: 'brats',
  records: 'volume',
  sampleSchema: {
    type: 'object',
    required: ['id', 'group', 'subset', 'images', 'label'],
    properties: { subset: { type: 'string' }, images: { type: 'object', additionalProperties: { type: 'string' } }, label: { type: ['string', 'null'] } },
  },
  encoder,
  adapter: bratsAdapter,
  colours: { 1: [255, 0, 0], 2: [0, 255, 0], 4: [255, 255, 0] },
};

// The BraTS DatasetAdapter: replays preprocess.brats (slices2d) on one record for predict, and maps
// predictions back to the patient's own grid, label values and NIfTI geometry.
import type { JsonObject, JsonValue } from '../../engine/stage.js';
import type { Feature } from '../tfrecord/example.js';
import { writeNifti } from '../nifti/write.js';
import {
  argmaxClasses,
  brainBoundingBox,
  decodeBratsExample,
  DEFAULT_TRAIN_LABEL_MAP,
  invertLabelMap,
  modalityOrder,
  sliceInput,
  uncropSlices,
  zscoreBrain,
  type BrainBox,
  type LabelRemap,
} from '../preprocess/brats.js';
import type { DatasetAdapter, LabelMap, PreparedCase, RgbImage } from './adapter.js';

interface BratsTransform {
  mode: 'slices2d' | 'patches3d';
  size: [number, number];
  modalities: string[];
  labelMap: LabelRemap;
}

function readTransform(transform: JsonObject): BratsTransform {
  if (transform.dataset !== 'brats') throw new Error(`BraTS adapter: transform.json is for dataset ${JSON.stringify(transform.dataset)}, not brats`);
  const mode = transform.mode;
  if (mode !== 'slices2d') {
    throw new Error(`BraTS adapter: transform.json mode ${JSON.stringify(mode)} is not supported for prediction yet; train with preprocess.brats mode: slices2d`);
  }
  const size = transform.size as JsonValue[] | undefined;
  if (!Array.isArray(size) || size.length !== 2 || size.some((n) => typeof n !== 'number')) {
    throw new Error(`BraTS adapter: transform.json size must be [H, W], got ${JSON.stringify(size)}`);
  }
  const modalities = Array.isArray(transform.modalities) ? (transform.modalities as string[]) : ['flair', 't1', 't1ce', 't2'];
  const labelMaps = transform.labelMap as { train?: LabelRemap } | undefined;
  return { mode, size: [size[0] as number, size[1] as number], modalities, labelMap: labelMaps?.train ?? DEFAULT_TRAIN_LABEL_MAP };
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

export const bratsAdapter: DatasetAdapter = {
  dataset: 'brats',
  labelValues: [0, 1, 2, 4],
  format: 'nifti',
  extension: '.nii.gz',

  async prepare(example: Record<string, Feature>, transform: JsonObject): Promise<PreparedCase> {
    const t = readTransform(transform);
    const volume = decodeBratsExample(example);
    const [X, Y, Z] = volume.shape;
    const order = modalityOrder(volume, t.modalities);
    const flairAt = volume.modalities.indexOf('flair');
    const flair = flairAt >= 0 ? volume.data.slice(flairAt * X * Y * Z, (flairAt + 1) * X * Y * Z) : null;
    // An all-zero volume still gets a prediction: the whole volume stands in for the brain box.
    const box = brainBoundingBox(volume) ?? { x: [0, X], y: [0, Y], z: [0, Z] };
    zscoreBrain(volume);
    const per = t.size[0] * t.size[1] * order.length;
    const depth = box.z[1] - box.z[0];
    const x = new Float32Array(depth * per);
    for (let k = 0; k < depth; k++) x.set(sliceInput(volume, box, box.z[0] + k, order, t.size), k * per);
    const label: LabelMap | null = volume.label
      ? { data: volume.label, shape: [Z, Y, X], spacing: [volume.spacing[2]!, volume.spacing[1]!, volume.spacing[0]!] }
      : null;
    const prepared: PreparedCase = {
      id: volume.id,
      x,
      count: depth,
      itemShape: [t.size[0], t.size[1], order.length],
      label,
      context: {
        shape: [X, Y, Z],
        box: { x: box.x, y: box.y, z: box.z },
        spacing: volume.spacing,
        affine: volume.affine,
        subset: volume.subset,
        size: t.size,
      },
    };
    if (flair) flairOf.set(prepared, { data: flair, shape: [X, Y, Z] });
    return prepared;
  },

  async restore(probabilities: Float32Array, channels: number, prepared: PreparedCase, transform: JsonObject): Promise<LabelMap> {
    const t = readTransform(transform);
    const expected = prepared.count * t.size[0] * t.size[1] * channels;
    if (probabilities.length !== expected) {
      throw new Error(`BraTS adapter: case ${prepared.id}: got ${probabilities.length} probabilities, ${prepared.count} slices of ${t.size.join('x')}x${channels} need ${expected}`);
    }
    const classes = argmaxClasses(probabilities, channels);
    const shape = contextShape(prepared);
    const data = uncropSlices(classes, t.size, contextBox(prepared), shape, invertLabelMap(t.labelMap));
    const spacing = prepared.context.spacing as number[];
    return { data, shape: [shape[2], shape[1], shape[0]], spacing: [spacing[2]!, spacing[1]!, spacing[0]!] };
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

export default bratsAdapter;

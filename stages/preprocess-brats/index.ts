// Step 4 for BraTS: z-score each modality over brain voxels, crop to the brain box, remap labels (4 → 3),
// and write axial slices (or 3D patches: sampled for training, tiles covering the brain box for validation)
// as tensor datasets, split by patient. The math lives in
// lib/preprocess/brats.ts so the BraTS adapter replays it exactly at prediction time.
import path from 'node:path';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import { readExamples } from '../../lib/tfrecord/spec.js';
import { bratsTransformContract, readDatasetSpec, splitContract, writeContract, type BratsTransform, type LabelSpec } from '../../lib/contracts/index.js';
import { getString, getStrings } from '../../lib/tfrecord/example.js';
import { getDatasetKind } from '../../lib/datasets/registry.js';
import { TensorDatasetWriter } from '../../lib/tensors/dataset.js';
import { splitGroups } from '../../lib/preprocess/split.js';
import { Rng, seedFromString } from '../../lib/rng.js';
import {
  BOX_TILING,
  brainBoundingBox,
  clipChannels,
  decodeBratsExample,
  extractPatch,
  labelSlice,
  modalityOrder,
  remapLabels,
  sliceInput,
  sliceTarget,
  tilePatches,
  zscoreBrain,
  type BrainBox,
  type BratsVolume,
} from '../../lib/preprocess/brats.js';

export interface PreprocessBratsParams {
  mode: 'slices2d' | 'patches3d';
  size: [number, number];
  patch: [number, number, number];
  patches_per_patient: number;
  val_fraction: number;
  seed: number;
  tumour_fraction: number;
  /** null: class i is the i-th class of the label map declared at ingest (background first). */
  label_map: Record<string, number> | null;
  /** Channel → [lo, hi] clipped before the z-score (CT), or null. */
  clip?: Record<string, [number, number]> | null;
}

/** The training remap: the param, checked against the dataset's label map, or the label map's class order. */
function trainRemap(param: Record<string, number> | null, labels: LabelSpec, paramPath: string): Record<string, number> {
  const fromLabels = Object.fromEntries(labels.classes.map((c, index) => [String(c.value), index]));
  if (param === null) return fromLabels;
  const declared = Object.keys(fromLabels).sort().join(', ');
  if (Object.keys(param).sort().join(', ') !== declared) {
    throw new Error(`${paramPath}.label_map: keys ${Object.keys(param).sort().join(', ')} differ from the label values declared at ingest (${declared}); leave label_map unset (null) to take them from the data`);
  }
  return param;
}


/** Indices of the slices (of the box) to keep for training: every tumour slice plus sampled brain-only ones. */
function chooseSlices(volume: BratsVolume, box: BrainBox, tumourFraction: number, rng: Rng, keepAll: boolean): number[] {
  const tumour: number[] = [];
  const brainOnly: number[] = [];
  const [X, Y] = volume.shape;
  for (let z = box.z[0]; z < box.z[1]; z++) {
    const labels = volume.label ? labelSlice(volume.label, volume.shape, box, z) : null;
    if (labels && labels.some((v) => v !== 0)) {
      tumour.push(z);
      continue;
    }
    // A brain-only slice has some non-zero FLAIR (any modality would do: the box is their union).
    let brain = false;
    for (let i = z * X * Y; i < (z + 1) * X * Y && !brain; i++) brain = volume.data[i] !== 0;
    if (brain) brainOnly.push(z);
  }
  if (keepAll) return [...tumour, ...brainOnly].sort((a, b) => a - b);
  const wantBrainOnly = tumourFraction >= 1 ? 0 : Math.round((tumour.length * (1 - tumourFraction)) / tumourFraction);
  const picked = rng.shuffle([...brainOnly]).slice(0, Math.min(brainOnly.length, wantBrainOnly));
  return [...tumour, ...picked].sort((a, b) => a - b);
}

/** Patch start positions: a tumour_fraction share centred on tumour voxels, the rest on brain voxels. */
function choosePatches(volume: BratsVolume, classes: Uint8Array, box: BrainBox, patch: [number, number, number], count: number, tumourFraction: number, rng: Rng): [number, number, number][] {
  const [X, Y] = volume.shape;
  const tumour: number[] = [];
  const brain: number[] = [];
  for (let z = box.z[0]; z < box.z[1]; z++) {
    for (let y = box.y[0]; y < box.y[1]; y++) {
      for (let x = box.x[0]; x < box.x[1]; x++) {
        const i = (z * Y + y) * X + x;
        if (classes[i] !== 0) tumour.push(i);
        else if (volume.data[i] !== 0) brain.push(i);
      }
    }
  }
  const starts: [number, number, number][] = [];
  for (let k = 0; k < count; k++) {
    const fromTumour = tumour.length > 0 && (brain.length === 0 || rng.next() < tumourFraction);
    const pool = fromTumour ? tumour : brain;
    const centre = pool[rng.int(pool.length)]!;
    const cz = Math.floor(centre / (X * Y));
    const cy = Math.floor((centre % (X * Y)) / X);
    const cx = centre % X;
    const clamp = (c: number, size: number, lo: number, hi: number): number =>
      hi - lo <= size ? lo - Math.floor((size - (hi - lo)) / 2) : Math.min(Math.max(c - Math.floor(size / 2), lo), hi - size);
    starts.push([clamp(cz, patch[0], box.z[0], box.z[1]), clamp(cy, patch[1], box.y[0], box.y[1]), clamp(cx, patch[2], box.x[0], box.x[1])]);
  }
  return starts;
}

export default defineStage<PreprocessBratsParams>({
  kind: 'preprocess.brats',
  // 2: patches3d validation is the tiling of each validation patient's brain box (was sampled patches).
  // 3: label map from the data (spec.json), labels in transform.json.
  version: '3',
  description:
    'BraTS preprocessing: per-modality z-score over brain voxels, brain-box crop, label remap 4→3, axial slices [H, W, 4] or patches [D, H, W, 4], split by patient.',
  inputs: {
    data: { description: "tfrecord.read's verified BraTS records (volume/data, label/data, ...)" },
  },
  outputs: {
    train: { description: 'Tensor dataset of training slices/patches (x float32 [.., 4], y uint8 classes 0..3)', type: 'dir' },
    val: {
      description:
        "Tensor dataset of the validation patients: slices2d every brain slice; patches3d the tiles that cover each patient's brain box (every brain voxel at least once, as predict tiles it)",
      type: 'dir',
    },
    transform: { description: 'transform.json: what the BraTS adapter replays at prediction time', type: 'file' },
    split: { description: 'split.json: patients and sample ids on each side', type: 'file' },
  },
  async run(ctx) {
    const dir = ctx.inputs.data;
    if (dir === undefined) throw new Error(`stage ${ctx.stageName}: input "data" (tfrecord.read's folder) is missing`);
    const p = ctx.params;
    const size: [number, number] = [p.size[0], p.size[1]];
    const patch: [number, number, number] = [p.patch[0], p.patch[1], p.patch[2]];
    const spec = await readDatasetSpec(dir);
    const labelMap = trainRemap(p.label_map, spec.labels, `stages.${ctx.stageName}.params`);
    const classes = Math.max(...Object.values(labelMap)) + 1;
    if (getDatasetKind(spec.dataset, path.join(dir, 'spec.json')).records !== 'volume') {
      throw new Error(`stage ${ctx.stageName}: ${path.join(dir, 'spec.json')} holds ${spec.dataset} 2D records; preprocess.brats reads volume records (use preprocess.2d)`);
    }
    // The channel order of the first record is the model's (BraTS: flair, t1, t1ce, t2; nnU-Net: channel_names).
    let channelNames: string[] | null = null;

    // Pass 1: which patients exist and have labels (Validation patients have none and cannot train).
    const labelled: string[] = [];
    const unlabelled: string[] = [];
    for await (const view of readExamples(dir)) {
      const id = getString(view.features, 'id');
      channelNames ??= getStrings(view.features, 'volume/modalities');
      if (view.features['label/data'] !== undefined) labelled.push(id);
      else unlabelled.push(id);
    }
    if (labelled.length < 2) {
      throw new Error(`${dir}: preprocess.brats needs at least 2 patients with labels to split by patient, found ${labelled.length} (${unlabelled.length} without labels)`);
    }
    const split = splitGroups(labelled, p.val_fraction, p.seed);
    const valSet = new Set(split.val);
    ctx.print(`${labelled.length} labelled patients: ${split.train.length} train, ${split.val.length} val (${unlabelled.length} unlabelled skipped)`);

    if (channelNames === null) throw new Error(`${dir}: holds no records`);
    const channels = channelNames.length;
    const xShape = p.mode === 'slices2d' ? [size[0], size[1], channels] : [...patch, channels];
    const yShape = p.mode === 'slices2d' ? [size[0], size[1], 1] : [...patch, 1];
    const meta: JsonObject = { dataset: spec.dataset, mode: p.mode, modalities: channelNames, classes: spec.labels.classes.map((c) => c.name) };
    const writers = {
      train: await TensorDatasetWriter.create(ctx.outs.train!, { x: { shape: xShape, dtype: 'float32' }, y: { shape: yShape, dtype: 'uint8' }, classes, meta }),
      val: await TensorDatasetWriter.create(ctx.outs.val!, { x: { shape: xShape, dtype: 'float32' }, y: { shape: yShape, dtype: 'uint8' }, classes, meta }),
    };
    const ids = { train: [] as string[], val: [] as string[] };
    const counts = { train: { samples: 0, tumour: 0 }, val: { samples: 0, tumour: 0 } };
    try {
      // Pass 2: preprocess patient by patient (memory: one volume at a time).
      for await (const view of readExamples(dir)) {
        if (ctx.signal.aborted) {
          await writers.train.abort();
          await writers.val.abort();
          return { status: 'interrupted' };
        }
        if (view.features['label/data'] === undefined) continue;
        const volume = decodeBratsExample(view.features, `${path.join(dir, view.file)} record ${view.index}`);
        const side = valSet.has(volume.group) ? 'val' : 'train';
        const order = modalityOrder(volume, channelNames!);
        const box = brainBoundingBox(volume);
        if (!box) {
          ctx.log.warn({ patient: volume.id }, 'all modalities are zero: no brain, patient skipped');
          continue;
        }
        if (p.clip) clipChannels(volume, p.clip);
        zscoreBrain(volume);
        const target = remapLabels(volume.label!, labelMap, volume.id, volume.shape, `${path.join(dir, view.file)} record ${view.index} (patient ${volume.id})`);
        const rng = new Rng(seedFromString(volume.id, p.seed));
        if (p.mode === 'slices2d') {
          for (const z of chooseSlices(volume, box, p.tumour_fraction, rng, side === 'val')) {
            const x = sliceInput(volume, box, z, order, size);
            const y = sliceTarget(target, volume.shape, box, z, size);
            const tumour = y.some((v) => v !== 0);
            const id = `${volume.id}:z${String(z).padStart(3, '0')}`;
            await writers[side].add({ id, x, y, info: { patient: volume.id, slice: z, tumour } });
            ids[side].push(id);
            counts[side].samples++;
            if (tumour) counts[side].tumour++;
          }
        } else {
          // Validation sees what predict sees: the tiles of the whole brain box, not a sample of patches.
          const tiles = side === 'val';
          const starts = tiles ? tilePatches(box, patch, volume.shape) : choosePatches(volume, target, box, patch, p.patches_per_patient, p.tumour_fraction, rng);
          for (const [k, start] of starts.entries()) {
            const { x, y } = extractPatch(volume, target, start, patch, order);
            const tumour = y!.some((v) => v !== 0);
            const id = `${volume.id}:${tiles ? 't' : 'p'}${String(k).padStart(3, '0')}`;
            await writers[side].add({ id, x, y: y!, info: { patient: volume.id, start, tumour } });
            ids[side].push(id);
            counts[side].samples++;
            if (tumour) counts[side].tumour++;
          }
        }
      }
      await writers.train.close();
      await writers.val.close();
    } catch (error) {
      await writers.train.abort().catch(() => undefined);
      await writers.val.abort().catch(() => undefined);
      throw error;
    }

    await writeContract(splitContract, ctx.outs.split!, {
      seed: p.seed,
      valFraction: p.val_fraction,
      train: split.train,
      val: split.val,
      trainIds: [...ids.train].sort(),
      valIds: [...ids.val].sort(),
      unlabelled: [...unlabelled].sort(),
    });
    const transform: BratsTransform = {
      dataset: spec.dataset,
      labels: spec.labels,
      mode: p.mode,
      ...(p.mode === 'slices2d' ? { size } : { patch, tiling: BOX_TILING }),
      channels,
      classes,
      modalities: channelNames!,
      zscore: 'brain-nonzero',
      ...(p.clip ? { clip: p.clip } : {}),
      crop: 'brain-bbox',
      labelMap: { train: labelMap },
    };
    await writeContract(bratsTransformContract, ctx.outs.transform!, transform);
    ctx.print(
      `train: ${counts.train.samples} ${p.mode === 'slices2d' ? 'slices' : 'patches'} (${counts.train.tumour} with tumour); val: ${counts.val.samples}${p.mode === 'slices2d' ? '' : ' tiles'} (${counts.val.tumour} with tumour)`,
    );
    return { status: 'done', summary: { train: counts.train.samples, val: counts.val.samples, trainTumour: counts.train.tumour, valTumour: counts.val.tumour } };
  },
});

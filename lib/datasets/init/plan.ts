// `flow init`'s fingerprint and plan for image/mask pairs: the data's facts (cases, sizes, channels,
// per-channel intensities, label values and frequencies, broken files), then a pipeline whose every choice
// is a YAML comment saying why. The param names are the shipped pipelines' (params.data.root,
// params.train.epochs, params.train.input_size, ...), so `--set train.epochs=2` works on it.
import fs from 'node:fs';
import path from 'node:path';
import { decodeLabelImage, decodeRgb, readImageInfo } from '../../image/index.js';
import { labelHistogram } from '../../contracts/labels.js';
import { findPairs } from '../image-pairs/layout.js';
import type { NiftiReport } from '../volumes/ingest.js';

export interface PairsFingerprint {
  cases: number;
  broken: { path: string; reason: string }[];
  skipped: number;
  sizes: { width: number; height: number }[];
  channels: Record<string, number>;
  /** Per RGB channel, in [0, 1] units. */
  intensity: { mean: number[]; std: number[] };
  /** Stored mask value → pixels. */
  labelValues: Map<number, number>;
}

export async function fingerprintPairs(root: string, images: string, masks: string, splitFile: string | null): Promise<PairsFingerprint> {
  const found = findPairs(root, { images, masks, group: null, split_file: splitFile }, 'init');
  const fp: PairsFingerprint = { cases: 0, broken: [], skipped: found.skipped.length, sizes: [], channels: {}, intensity: { mean: [0, 0, 0], std: [0, 0, 0] }, labelValues: new Map() };
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  let pixels = 0;
  // A few cases at a time: sharp decodes on libuv's threads, and each file is read once.
  const results = new Array<{ size: { width: number; height: number }; channels: string; rgb: Uint8Array; histogram: Float64Array } | { broken: { path: string; reason: string } }>(found.pairs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < found.pairs.length) {
      const at = next++;
      const pair = found.pairs[at]!;
      try {
        const [imageBytes, maskBytes] = await Promise.all([fs.promises.readFile(path.join(root, pair.image)), fs.promises.readFile(path.join(root, pair.mask))]);
        const [info, rgb, mask] = await Promise.all([
          readImageInfo(imageBytes, path.join(root, pair.image)),
          decodeRgb(imageBytes, { label: path.join(root, pair.image) }),
          decodeLabelImage(maskBytes, { label: path.join(root, pair.mask) }),
        ]);
        results[at] = mask.width !== rgb.width || mask.height !== rgb.height
          ? { broken: { path: pair.mask, reason: `mask is ${mask.width}x${mask.height}, image ${rgb.width}x${rgb.height}` } }
          : { size: { width: rgb.width, height: rgb.height }, channels: info.isPalette ? 'palette' : String(info.channels), rgb: rgb.data, histogram: labelHistogram(mask.data) };
      } catch (error) {
        results[at] = { broken: { path: pair.image, reason: (error as Error).message } };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, found.pairs.length) }, worker));
  for (const r of results) {
    if ('broken' in r) {
      fp.broken.push(r.broken);
      continue;
    }
    fp.channels[r.channels] = (fp.channels[r.channels] ?? 0) + 1;
    fp.sizes.push(r.size);
    const data = r.rgb;
    for (let i = 0; i < data.length; i += 3) {
      for (let c = 0; c < 3; c++) {
        const v = data[i + c]! / 255;
        sum[c]! += v;
        squares[c]! += v * v;
      }
    }
    pixels += data.length / 3;
    r.histogram.forEach((n, v) => n > 0 && fp.labelValues.set(v, (fp.labelValues.get(v) ?? 0) + n));
    fp.cases++;
  }
  if (pixels > 0) {
    fp.intensity.mean = sum.map((s) => s / pixels);
    fp.intensity.std = squares.map((s, c) => Math.sqrt(Math.max(0, s / pixels - fp.intensity.mean[c]! ** 2)));
  }
  return fp;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round3 = (v: number): string => v.toFixed(3);

/** Largest multiple of `step` ≤ value, at least `step`. */
function snap(value: number, step: number): number {
  return Math.max(step, Math.floor(value / step) * step);
}

export interface PlanOptions {
  root: string;
  name: string;
  /** Training memory budget for the U-Net's activations, bytes (default 2 GiB: a laptop or a CPU job). */
  memoryBudget?: number;
}

const FILTERS = 16;
const BATCH = 8;

/**
 * Bytes of float32 activations a 2D U-Net keeps for the backward pass at `pixels` per item: per level l
 * (pixels / 4^l, filters·2^l channels) two convolutions and their ReLUs in the encoder, the same in the decoder
 * plus the skip concatenation, ×2 for the gradients of the same size.
 */
export function unetActivationBytes(pixels: number, batch: number, filters: number, depth: number): number {
  let perItem = 0;
  for (let l = 0; l <= depth; l++) perItem += (pixels / 4 ** l) * filters * 2 ** l * (l === depth ? 4 : 10);
  return perItem * batch * 4 * 2;
}

/** The input side (a multiple of `step`) of a square-ish picture that keeps the activations within the budget. */
function sideWithinBudget(h: number, w: number, depth: number, step: number, budget: number): { size: [number, number]; bytes: number; scaled: boolean } {
  let scale = 1;
  let size: [number, number] = [snap(h, step), snap(w, step)];
  while (unetActivationBytes(size[0] * size[1], BATCH, FILTERS, depth) > budget && Math.max(...size) > step) {
    scale *= 0.9;
    size = [snap(h * scale, step), snap(w * scale, step)];
  }
  return { size, bytes: unetActivationBytes(size[0] * size[1], BATCH, FILTERS, depth), scaled: scale < 1 };
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/** The pipeline YAML for image pairs, every choice commented. */
export function planImagePairs(layout: { images: string; masks: string; splitFile: string | null }, fp: PairsFingerprint, options: PlanOptions): string {
  if (fp.cases === 0) throw new Error(`${options.root}: no readable image/mask pair (${fp.broken.slice(0, 3).map((b) => `${b.path}: ${b.reason}`).join('; ')})`);
  const depth = 3;
  const step = 2 ** (depth + 1);
  const budget = options.memoryBudget ?? 2 ** 31;
  const h = median(fp.sizes.map((s) => s.height));
  const w = median(fp.sizes.map((s) => s.width));
  const { size, bytes, scaled } = sideWithinBudget(h, w, depth, step, budget);
  const values = [...fp.labelValues.entries()].sort((a, b) => a[0] - b[0]);
  const total = values.reduce((a, [, n]) => a + n, 0);
  const background = values.some(([v]) => v === 0) ? 0 : [...values].sort((a, b) => b[1] - a[1])[0]![0];
  const binary = values.length === 2;
  const classes = binary ? 1 : values.length;
  const rgb = Object.keys(fp.channels).some((c) => c !== '1' && c !== '2');
  const batch = Math.max(1, Math.min(8, Math.floor(fp.cases * 0.8)));
  const epochs = fp.cases < 50 ? 40 : fp.cases < 500 ? 30 : 15;
  const yaml = (v: unknown): string => JSON.stringify(v);
  const labelLines = values.map(([v, n]) => `        ${v}: ${v === background ? 'background' : `class_${v}`}    # ${((100 * n) / total).toFixed(2)}% of mask pixels${v === background ? (values.some(([x]) => x === 0) ? ' (0 is the background)' : ' (the most frequent value: taken as background; edit if wrong)') : ''}`);
  const sizesSeen = new Set(fp.sizes.map((s) => `${s.width}x${s.height}`));
  return `# Generated by \`flow init ${options.root}\`: a plan for this data, every choice with the reason. Edit freely.
# Fingerprint: ${fp.cases} image/mask pairs${fp.broken.length ? `, ${fp.broken.length} broken (${fp.broken.slice(0, 2).map((b) => b.path).join(', ')})` : ''}, ${fp.skipped} other files skipped;
#   sizes ${sizesSeen.size === 1 ? [...sizesSeen][0] : `${sizesSeen.size} different (median ${w}x${h})`}; channels ${Object.entries(fp.channels).map(([c, n]) => `${c} (${n})`).join(', ')};
#   intensity mean RGB [${fp.intensity.mean.map(round3).join(', ')}], std [${fp.intensity.std.map(round3).join(', ')}];
#   mask values ${values.map(([v]) => v).join(', ')}.
${pipelineHead(options, `${binary ? 'Binary' : `${values.length}-class`} 2D segmentation of ${yaml(options.root)} with a U-Net (planned by flow init).`)}
    input_size: ${yaml(size)}    # median picture ${w}x${h}${scaled ? ' scaled down' : ''}, snapped to a multiple of 2^(depth+1) = ${step}: ~${gib(bytes)} of activations at batch ${BATCH} (budget ${gib(budget)})
    batch_size: ${batch}    # ${batch < 8 ? `${fp.cases} cases: at most 80% of them train` : '8 images a step fit a CPU run'}
    epochs: ${epochs}    # ${fp.cases} cases: ${epochs} passes (fewer for larger sets)
${trainSettings({ lr: '3.0e-3    # what the shipped 2D pipeline learns with', loss: binary ? 'bce_dice    # two label values: one sigmoid channel, BCE + soft Dice' : `ce_dice    # ${values.length} label values: softmax over ${values.length} classes, CE + soft Dice`, depth })}
stages:
  ingest:
    kind: image-pairs.ingest
    inputs: { root: "\${params.data.root}" }
    params:
      images: ${yaml(layout.images)}    # the picture folder; * is the case's stem
      masks: ${yaml(layout.masks)}    # matched by stem: ${fp.cases} pairs
      labels:    # every value found in the masks; name the classes
${labelLines.join('\n')}
      background: ${background}
      ignore: []    # values to leave out of the losses and metrics (e.g. a void border)
      group: null    # a regex on the stem whose first group keeps related images on one side of the split
      split_file: ${layout.splitFile === null ? 'null    # no official test list found' : `${yaml(layout.splitFile)}    # an official test list: those cases are never trained on`}
  records:
    kind: tfrecord.write
    inputs: { samples: "\${stages.ingest.outs.index}" }
    params: { shard_size: 64, compression: gzip }
  dataset:
    kind: tfrecord.read
    inputs: { records: "\${stages.records.outs.shards}" }
  preprocess:
    kind: preprocess.2d
    inputs: { data: "\${stages.dataset.outs.data}" }
    params:
      size: "\${params.train.input_size}"
      val_fraction: 0.2
      seed: "\${params.seed}"
      normalize: dataset    # photographs: /255, then the train split's per-channel mean/std
      channels: ${rgb ? 3 : 1}    # ${rgb ? 'colour (or mixed) pictures: RGB, grey ones replicated' : 'every picture is grey'}
${trainingStages({ inChannels: rgb ? 3 : 1, classes, classesWhy: binary ? 'binary: one sigmoid channel' : 'one softmax channel per label value', subset: layout.splitFile === null ? 'val' : 'test', subsetWhy: `${layout.splitFile === null ? 'the held-out validation groups' : 'the official test cases'}: PNGs in the masks' own values, named after each picture's stem` })}`;
}

/** name, description and params up to `train:` (the shipped pipelines' names: data.root, seed, backend). */
function pipelineHead(options: PlanOptions, description: string): string {
  return `name: ${options.name}
description: ${description}
params:
  data:
    root: ${JSON.stringify(options.root)}
  seed: 42
  backend: auto
  train:`;
}

/** params.train after input_size, batch_size and epochs: the shipped pipelines' settings. */
function trainSettings(o: { lr: string; loss: string; depth: number }): string {
  return `    optimizer: adam
    lr: ${o.lr}
    schedule: { type: cosine }
    loss: ${o.loss}
    filters: ${FILTERS}
    depth: ${o.depth}
    augment: { hflip: true, vflip: false, rot90: false, brightness: 0.1, contrast: 0.1 }
    seed: \${params.seed}
    best_metric: val_dice
    checkpoint_every_steps: 20
    backend: \${params.backend}`;
}

interface TrainingStageOptions {
  inChannels: number;
  classes: number;
  classesWhy: string;
  subset: string;
  subsetWhy: string;
}

/** Steps 5-12 of every planned pipeline (hparams … evaluate) and the metrics/report keys. */
function trainingStages(o: TrainingStageOptions): string {
  return `  hparams:
    kind: hparams
    params: "\${params.train}"
  model:
    kind: model.build
    params:
      arch: unet2d
      input_size: "\${params.train.input_size}"
      in_channels: ${o.inChannels}
      classes: ${o.classes}    # ${o.classesWhy}
      filters: "\${params.train.filters}"
      depth: "\${params.train.depth}"
      batch_norm: false    # small batches: batch-norm statistics would not settle
      seed: "\${params.seed}"
      backend: "\${params.backend}"
  train:
    kind: train
    inputs:
      train: "\${stages.preprocess.outs.train}"
      val: "\${stages.preprocess.outs.val}"
      model: "\${stages.model.outs.model}"
      hparams: "\${stages.hparams.outs.hparams}"
  log:
    kind: train.log
    inputs: { metrics: "\${stages.train.outs.metrics}" }
  export:
    kind: export
    inputs:
      model: "\${stages.train.outs.model}"
      curves: "\${stages.log.outs.curves}"
      transform: "\${stages.preprocess.outs.transform}"
    params: { backend: "\${params.backend}" }
  reload:
    kind: model.load
    inputs: { model: "\${stages.export.outs.model}" }
    params: { backend: "\${params.backend}" }
  predict:
    kind: predict
    inputs:
      model: "\${stages.export.outs.model}"
      data: "\${stages.dataset.outs.data}"
      split: "\${stages.preprocess.outs.split}"
      transform: "\${stages.preprocess.outs.transform}"
    needs: [reload]
    params: { backend: "\${params.backend}", subset: ${o.subset}, panels: 12 }    # ${o.subsetWhy}
  evaluate:
    kind: evaluate
    inputs: { predictions: "\${stages.predict.outs.predictions}" }
metrics: "\${stages.evaluate.outs.metrics}"
report:
  - "\${stages.export.outs.plots}"
  - "\${stages.predict.outs.panels}"
  - "\${stages.evaluate.outs.table}"
  - "\${stages.ingest.outs.report}"
`;
}

/** The pipeline YAML for an nnU-Net v2 / Decathlon dataset, from nifti.ingest's report (the fingerprint). */
export function planVolumes(report: NiftiReport, options: PlanOptions): string {
  const train = report.cases.filter((c) => c.subset === 'train');
  if (train.length < 2) throw new Error(`${options.root}: ${train.length} usable labelled case(s); a split by case needs at least 2`);
  const depth = 3;
  const step = 2 ** (depth + 1);
  const budget = options.memoryBudget ?? 2 ** 31;
  const x = median(train.map((c) => c.dims[0]!));
  const y = median(train.map((c) => c.dims[1]!));
  const z = median(train.map((c) => c.dims[2]!));
  const sx = median(train.map((c) => c.spacing[0]!));
  const sy = median(train.map((c) => c.spacing[1]!));
  const sz = median(train.map((c) => c.spacing[2]!));
  const { size, bytes, scaled } = sideWithinBudget(y, x, depth, step, budget);
  const anisotropy = sz / Math.min(sx, sy);
  const K = report.labels.classes.length;
  // CT channels: clip to the foreground's 0.5-99.5 percentiles, then z-score (nnU-Net's CT normalisation).
  const clip = Object.fromEntries(
    report.channels.filter((c) => /^ct$/i.test(c) && report.intensity[c]?.foreground).map((c) => [c, [report.intensity[c]!.foreground!.p0_5, report.intensity[c]!.foreground!.p99_5]]),
  );
  const ct = Object.keys(clip).length > 0;
  const yaml = (v: unknown): string => JSON.stringify(v);
  const kindName = report.dataset === 'nnunet' ? 'nnU-Net v2' : 'Decathlon';
  return `# Generated by \`flow init ${options.root}\`: a plan for this ${kindName} dataset, every choice with the reason. Edit freely.
# Fingerprint: ${report.counts.cases} cases (${report.counts.train} train, ${report.counts.test} test), ${report.counts.skipped} files skipped;
#   median shape ${x}x${y}x${z} voxels at ${sx}x${sy}x${sz} mm (anisotropy ${anisotropy.toFixed(1)});
#   channels ${report.channels.join(', ')}; intensity ${Object.entries(report.intensity).map(([n, st]) => `${n} ${st.min}..${st.max} mean ${st.mean} std ${st.std}`).join('; ')};
#   labels ${Object.entries(report.labelValues).map(([v, l]) => `${v} ${l.name} ${(l.fraction * 100).toFixed(2)}%`).join(', ')}.
${pipelineHead(options, `${K}-class segmentation of the ${kindName} dataset ${yaml(options.root)} with a 2D U-Net on axial slices (planned by flow init).`)}
    input_size: ${yaml(size)}    # the in-plane median ${x}x${y}${scaled ? ' scaled down' : ''}, snapped to a multiple of 2^(depth+1) = ${step}: ~${gib(bytes)} of activations at batch ${BATCH} (budget ${gib(budget)}); slices are cropped to the non-zero box first
    batch_size: ${BATCH}
    epochs: ${train.length < 20 ? 30 : 15}    # ${train.length} training cases
${trainSettings({ lr: '1.0e-3    # what the shipped BraTS pipeline learns multi-class volumes with', loss: `ce_dice    # softmax over ${K} classes (background included), CE + soft Dice over the foreground classes`, depth })}
stages:
  ingest:
    kind: nifti.ingest
    inputs: { root: "\${params.data.root}" }
    params: { layout: ${report.dataset}, strict: false }    # the label map and channels are dataset.json's
  records:
    kind: tfrecord.write
    inputs: { samples: "\${stages.ingest.outs.index}" }
    params: { shard_size: 8, compression: gzip }
  dataset:
    kind: tfrecord.read
    inputs: { records: "\${stages.records.outs.shards}" }
  preprocess:
    kind: preprocess.brats
    inputs: { data: "\${stages.dataset.outs.data}" }
    params:
      mode: slices2d    # ${anisotropy > 2.5 ? `anisotropic voxels (${anisotropy.toFixed(1)}x thicker slices): 2D in the high-resolution plane, as nnU-Net's 2d configuration` : 'CPU budget: 2D slices train far faster than 3D patches (mode: patches3d, patch: [D, H, W] for a 3D U-Net)'}
      size: "\${params.train.input_size}"
      val_fraction: 0.25    # held-out cases, never slices of a training case
      seed: "\${params.seed}"
      clip: ${ct ? yaml(clip) : 'null'}    # ${ct ? `CT (${Object.keys(clip).join(', ')}): clipped to the 0.5-99.5 percentiles of the foreground voxels, then z-scored` : 'MRI: no clipping; intensities have no absolute scale, so each channel is z-scored over non-zero voxels'}
${trainingStages({ inChannels: report.channels.length, classes: K, classesWhy: `one softmax channel per class (${report.labels.classes.map((c) => c.name).join(', ')})`, subset: 'val', subsetWhy: 'the held-out cases: <case>.nii.gz label maps in the source geometry, as nnU-Net writes them' })}`;
}

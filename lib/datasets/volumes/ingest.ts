// The ingest of NIfTI layouts (nnU-Net v2, Decathlon): the layout's cases (layout readers in
// lib/datasets/nnunet/ and lib/datasets/msd/) are read volume by volume and checked (every channel readable
// and the same grid, a 4D image holding the channels dataset.json declares, the label on the same grid and
// inside the label map); a failing case is skipped naming the file (strict: an error with the param path).
// The report is the fingerprint `flow init` plans from: shapes, spacings, per-channel intensities, label
// frequencies.
import fs from 'node:fs';
import path from 'node:path';
import { readNiftiBytes, parseNifti, sameDims3d, type NiftiVolume } from '../../nifti/read.js';
import { digestBytes, sortedDigests, type FileDigest } from '../../digest.js';
import { labelHistogram, labelSpecFromParams, outsideMapReason, valuesOutsideMap, type LabelSpec } from '../../contracts/labels.js';
import type { IngestIndex, SkippedFile } from '../../contracts/ingest-index.js';
import { readMsdLayout } from '../msd/layout.js';
import { readCaseFoldersLayout, type CaseFoldersLayout } from '../case-folders/layout.js';
import { readNnunetLayout } from '../nnunet/layout.js';
import { channelVolume } from './read.js';
import type { LayoutCases } from './cases.js';

export interface NiftiIngestParams extends Partial<CaseFoldersLayout> {
  layout: 'auto' | 'nnunet' | 'msd' | 'folders';
  regions: Record<string, number[]> | null;
  ignore: number[];
  strict: boolean;
}

export interface VolumeSample {
  id: string;
  group: string;
  subset: string;
  images: Record<string, string>;
  label: string | null;
}

export interface NiftiReport {
  dataset: 'nnunet' | 'msd' | 'case-folders';
  root: string;
  channels: string[];
  labels: LabelSpec;
  counts: { cases: number; train: number; test: number; skipped: number };
  /** Per case: id, [X, Y, Z] and spacing (mm). */
  cases: { id: string; subset: string; dims: number[]; spacing: number[] }[];
  /** Per channel over all voxels of the usable cases (CT keeps its negative values). */
  intensity: Record<string, { min: number; max: number; mean: number; std: number; nonzeroFraction: number; foreground: { p0_5: number; p99_5: number; voxels: number } | null }>;
  labelValues: Record<string, { name: string; voxels: number; fraction: number }>;
  disagreements: string[];
  skipped: SkippedFile[];
}

export function detectNiftiLayout(root: string): 'nnunet' | 'msd' {
  const file = path.join(root, 'dataset.json');
  const json = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>) : null;
  if (json !== null && 'channel_names' in json) return 'nnunet';
  if (json !== null && 'modality' in json && Array.isArray(json.training)) return 'msd';
  throw new Error(`${file}: ${json === null ? 'missing' : 'neither an nnU-Net v2 (channel_names) nor a Decathlon (modality + training) dataset.json'}; set params.layout or point root at the dataset folder`);
}

export async function ingestNifti(
  rootInput: string,
  params: NiftiIngestParams,
  options: { paramPath?: string; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ index: IngestIndex<VolumeSample>; report: NiftiReport } | null> {
  const paramPath = options.paramPath ?? 'params';
  const root = path.resolve(rootInput);
  const kind = params.layout === 'auto' ? detectNiftiLayout(root) : params.layout;
  let layout: LayoutCases;
  if (kind === 'folders') {
    if (params.cases === undefined || params.channels === undefined || params.label === undefined || params.labels === undefined) {
      throw new Error(`${paramPath}: layout "folders" needs cases, channels, label and labels (e.g. BraTS: cases "Training/*/*", channels { flair: "{case}_flair.nii.gz", ... }, label "{case}_seg.nii.gz")`);
    }
    layout = readCaseFoldersLayout(root, { cases: params.cases, test_cases: params.test_cases ?? null, channels: params.channels, label: params.label, labels: params.labels }, paramPath);
  } else {
    layout = kind === 'nnunet' ? readNnunetLayout(root) : readMsdLayout(root);
  }
  // Where the label map was declared, for messages: dataset.json, or the params of a folders layout.
  const datasetJson = kind === 'folders' ? paramPath : path.join(root, 'dataset.json');
  const labels = labelSpecFromParams({ labels: layout.labels, background: 0, ignore: [...new Set([...params.ignore, ...layout.ignore])], regions: params.regions ?? layout.regions }, `${datasetJson} labels (and ${paramPath}.regions)`);
  const skipped = [...layout.skipped];
  const samples: VolumeSample[] = [];
  const digests = new Map<string, FileDigest>();
  const caseFacts: NiftiReport['cases'] = [];
  const acc = layout.channelNames.map(() => ({ min: Infinity, max: -Infinity, sum: 0, squares: 0, count: 0, nonzero: 0 }));
  const histogram = new Float64Array(256);
  // Per channel: every `stride`-th foreground (label > 0) voxel, halved whenever it passes FOREGROUND_SAMPLES,
  // for the percentiles a CT plan clips to; memory stays bounded whatever the dataset's size.
  const FOREGROUND_SAMPLES = 200_000;
  const foreground = layout.channelNames.map(() => ({ values: [] as number[], stride: 1, seen: 0 }));
  for (const [at, c] of layout.cases.entries()) {
    if (options.signal?.aborted) return null;
    options.onProgress?.(at, layout.cases.length);
    const read = new Map<string, Promise<NiftiVolume>>();
    const files = new Set<string>();
    let reference: NiftiVolume | null = null;
    let problem: SkippedFile | null = null;
    let segData: Float32Array | null = null;
    const channels: NiftiVolume[] = [];
    try {
      for (const [name, ref] of Object.entries(c.images)) {
        const file = ref.replace(/#\d+$/, '');
        if (!files.has(file)) {
          files.add(file);
          const bytes = await readNiftiBytes(path.join(root, file));
          digests.set(file, await digestBytes(bytes));
          read.set(file, Promise.resolve(parseNifti(path.join(root, file), bytes)));
          const whole = await read.get(file)!;
          const have = whole.dims[3] ?? 1;
          if (c.expectChannels !== undefined && c.expectChannels > 1 && have !== c.expectChannels) {
            problem = { path: file, reason: `case ${c.id}: the image has ${have} channel(s) (dims ${whole.dims.join('x')}) but dataset.json modality declares ${c.expectChannels} (cases must have the same channels)` };
            break;
          }
          if (c.expectChannels === 1 && whole.dims.length > 3 && whole.dims.slice(3).some((d) => d > 1)) {
            problem = { path: file, reason: `case ${c.id}: a ${whole.dims.length}D image (dims ${whole.dims.join('x')}) but dataset.json declares one modality` };
            break;
          }
        }
        const volume = await channelVolume(root, ref, read);
        reference ??= volume;
        if (!sameDims3d(volume.dims, reference.dims)) {
          problem = { path: file, reason: `case ${c.id}: channel ${name} is ${volume.dims.slice(0, 3).join('x')} but ${path.basename(reference.file)} is ${reference.dims.slice(0, 3).join('x')}; channels must share one grid` };
          break;
        }
        channels.push(volume);
      }
      if (problem === null && c.label !== null && reference !== null) {
        const bytes = await readNiftiBytes(path.join(root, c.label));
        const seg = parseNifti(path.join(root, c.label), bytes);
        if (!sameDims3d(seg.dims, reference.dims) || seg.data.length !== reference.data.length) {
          problem = { path: c.label, reason: `case ${c.id}: label is ${seg.dims.join('x')} but the image is ${reference.dims.slice(0, 3).join('x')}` };
        } else if (seg.data.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) {
          problem = { path: c.label, reason: `case ${c.id}: the label holds non-integer or out-of-range values; labels must be integers 0..255` };
        } else {
          const h = labelHistogram(Uint8Array.from(seg.data));
          const outside = valuesOutsideMap(labels, h);
          if (outside.length > 0) problem = { path: c.label, reason: `case ${c.id}: ${outsideMapReason(outside, labels, `${datasetJson} labels`)}` };
          else {
            segData = seg.data;
            h.forEach((n, v) => (histogram[v]! += n));
            digests.set(c.label, await digestBytes(bytes));
          }
        }
      }
    } catch (error) {
      const message = (error as Error).message;
      const file = message.split(': ')[0]!;
      problem = { path: path.isAbsolute(file) ? path.relative(root, file) : Object.values(c.images)[0]!, reason: `case ${c.id}: ${message.slice(file.length + 2) || message}` };
    }
    if (problem !== null) {
      skipped.push(problem);
      continue;
    }
    channels.forEach((v, k) => {
      const a = acc[k]!;
      for (const x of v.data) {
        if (x < a.min) a.min = x;
        if (x > a.max) a.max = x;
        a.sum += x;
        a.squares += x * x;
        if (x !== 0) a.nonzero++;
      }
      a.count += v.data.length;
      if (segData !== null) {
        const f = foreground[k]!;
        for (let i = 0; i < segData.length; i++) {
          if (segData[i] === 0 || labels.ignore.includes(segData[i]!)) continue;
          if (f.seen++ % f.stride === 0) f.values.push(v.data[i]!);
          if (f.values.length > FOREGROUND_SAMPLES) {
            f.values = f.values.filter((_, j) => j % 2 === 0);
            f.stride *= 2;
          }
        }
      }
    });
    caseFacts.push({ id: c.id, subset: c.subset, dims: reference!.dims.slice(0, 3), spacing: reference!.spacing.slice(0, 3).map((s) => Math.round(s * 1e6) / 1e6) });
    samples.push({ id: c.id, group: c.id, subset: c.subset, images: c.images, label: c.label });
  }
  options.onProgress?.(layout.cases.length, layout.cases.length);
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const problems = [...layout.disagreements, ...skipped.filter((s) => /^case /.test(s.reason)).map((s) => `${path.join(root, s.path)}: ${s.reason}`)];
  if (params.strict && problems.length > 0) {
    throw new Error(`nifti.ingest (strict): ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}; fix the file(s) or dataset.json, or set ${paramPath}.strict: false to skip them`);
  }
  if (samples.filter((s) => s.label !== null).length === 0) {
    throw new Error(`${root}: no usable labelled case (${skipped.slice(0, 3).map((s) => `${s.path}: ${s.reason}`).join('; ') || 'dataset.json lists none'})`);
  }
  const total = histogram.reduce((a, b) => a + b, 0);
  const names = new Map(labels.classes.map((c) => [c.value, c.name]));
  const labelValues: NiftiReport['labelValues'] = {};
  histogram.forEach((n, v) => {
    if (n > 0) labelValues[String(v)] = { name: names.get(v) ?? 'ignore', voxels: n, fraction: Math.round((n / total) * 1e6) / 1e6 };
  });
  const round = (v: number): number => Math.round(v * 1e4) / 1e4;
  const dataset = layout.kind === 'folders' ? 'case-folders' : layout.kind;
  const report: NiftiReport = {
    dataset,
    root,
    channels: layout.channelNames,
    labels,
    counts: { cases: samples.length, train: samples.filter((s) => s.subset === 'train').length, test: samples.filter((s) => s.subset === 'test').length, skipped: skipped.length },
    cases: caseFacts,
    intensity: Object.fromEntries(layout.channelNames.map((name, k) => {
      const a = acc[k]!;
      const mean = a.count ? a.sum / a.count : 0;
      const sorted = Float64Array.from(foreground[k]!.values).sort();
      const at = (q: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
      return [name, {
        min: a.count ? a.min : 0, max: a.count ? a.max : 0, mean: round(mean), std: round(Math.sqrt(Math.max(0, a.squares / Math.max(1, a.count) - mean * mean))),
        nonzeroFraction: round(a.nonzero / Math.max(1, a.count)),
        foreground: sorted.length === 0 ? null : { p0_5: at(0.005), p99_5: at(0.995), voxels: foreground[k]!.seen },
      }];
    })),
    labelValues,
    disagreements: layout.disagreements,
    skipped,
  };
  return { index: { dataset, root, labels, samples, skipped, files: sortedDigests(digests) }, report };
}

export function formatNiftiReport(report: NiftiReport): string {
  const lines = [
    `${{ nnunet: 'nnU-Net v2', msd: 'Decathlon', 'case-folders': 'case-folders' }[report.dataset]} dataset at ${report.root}: channels ${report.channels.join(', ')}`,
    `  ${report.counts.cases} cases (${report.counts.train} train, ${report.counts.test} test), ${report.counts.skipped} skipped`,
    `  shapes (XxYxZ @ mm): ${report.cases.map((c) => `${c.id} ${c.dims.join('x')} @ ${c.spacing.join('x')}`).join('; ')}`,
    `  intensity: ${Object.entries(report.intensity).map(([n, s]) => `${n} ${s.min}..${s.max} mean ${s.mean} std ${s.std}`).join('; ')}`,
    `  label values: ${Object.entries(report.labelValues).map(([v, l]) => `${v} ${l.name} ${(l.fraction * 100).toFixed(3)}%`).join(', ')}`,
  ];
  for (const d of report.disagreements) lines.push(`  dataset.json disagrees: ${d}`);
  for (const s of report.skipped) lines.push(`  skipped ${s.path}: ${s.reason}`);
  return `${lines.join('\n')}\n`;
}

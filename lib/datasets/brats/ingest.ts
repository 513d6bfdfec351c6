// Step 1 for BraTS: walk Training/{HGG,LGG}/<patient>/ and Validation/<patient>/, check every patient has
// all modalities (and a seg in Training) with equal dimensions, read every volume, and gather the report:
// counts, geometry, datatypes, brain-voxel intensity statistics, label frequencies and unexpected labels.
import fs from 'node:fs';
import path from 'node:path';
import { parseNifti, readNiftiBytes, sameDims3d, type NiftiVolume } from '../../nifti/read.js';
import { digestBytes, sortedDigests, type FileDigest } from '../../digest.js';
import { labelHistogram, labelSpecFromParams, outsideMapReason, valuesOutsideMap, type LabelSpec } from '../../contracts/labels.js';
import type { IngestIndex } from '../../contracts/ingest-index.js';

export interface BratsIngestParams {
  strict: boolean;
  label_map: Record<string, string>;
  /** Evaluated regions in stored values; BraTS 2021+ (3 = enhancing) sets its own. */
  regions?: Record<string, number[]>;
  modalities: string[];
}

/** BraTS 2019 regions: whole tumour, tumour core, enhancing tumour. */
export const BRATS_REGIONS: Record<string, number[]> = { WT: [1, 2, 4], TC: [1, 4], ET: [4] };

export const DEFAULT_LABEL_MAP: Record<string, string> = {
  '0': 'background',
  '1': 'necrotic/non-enhancing core',
  '2': 'edema',
  '4': 'enhancing tumour',
};
/** The BraTS 2019 label map with its WT/TC/ET regions (brats.ingest's defaults). */
export const BRATS_LABELS: LabelSpec = labelSpecFromParams({ labels: DEFAULT_LABEL_MAP, background: 0, regions: BRATS_REGIONS }, 'BraTS 2019 defaults');

export const DEFAULT_MODALITIES = ['flair', 't1', 't1ce', 't2'];

export type BratsSubset = 'HGG' | 'LGG' | 'Validation';

export interface BratsSample {
  id: string;
  group: string;
  subset: BratsSubset;
  images: Record<string, string>;
  label: string | null;
}

export type BratsIndex = IngestIndex<BratsSample> & { dataset: 'brats' };

interface IntensityAccumulator {
  min: number;
  max: number;
  sum: number;
  sumSquares: number;
  count: number;
}

export interface BratsPatientReport {
  id: string;
  subset: BratsSubset;
  dims: number[];
  spacing: number[];
  datatypes: Record<string, string>;
  /** Label value → voxel count (Training only). */
  labels: Record<string, number> | null;
}

export interface BratsReport {
  dataset: 'brats';
  root: string;
  modalities: string[];
  labelMap: Record<string, string>;
  counts: { patients: number; bySubset: Record<BratsSubset, number>; skipped: number; warnings: number };
  /** "XxYxZ" → number of patients. */
  dims: Record<string, number>;
  /** "sx x sy x sz" (mm) → number of patients. */
  spacings: Record<string, number>;
  /** modality (and "seg") → datatype → number of files. */
  datatypes: Record<string, Record<string, number>>;
  /** Over brain (non-zero) voxels of all usable patients. */
  intensity: Record<string, { min: number; max: number; mean: number; std: number; brainVoxels: number }>;
  labels: {
    /** value → { name (null when outside the label map), voxels, fraction of all labelled voxels }. */
    values: Record<string, { name: string | null; voxels: number; fraction: number }>;
    unexpected: { patient: string; file: string; value: number; voxels: number }[];
  };
  patients: BratsPatientReport[];
  skipped: { path: string; reason: string }[];
  warnings: string[];
}

export interface IngestOptions {
  /** How the params are named in errors (the stage's `stages.<name>.params`). */
  paramPath?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const EXPECTED_LAYOUT =
  'expected the BraTS 2019 layout: Training/{HGG,LGG}/<patient>/<patient>_{flair,t1,t1ce,t2,seg}.nii.gz and/or Validation/<patient>/<patient>_{flair,t1,t1ce,t2}.nii.gz ' +
  '(or the official MICCAI_BraTS_2019_Data_Training folder itself, which holds HGG/ and LGG/)';

function listDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return [];
  }
}

function describeFound(root: string): string {
  const entries = listDir(root);
  if (entries.length === 0) return 'the folder is empty';
  const shown = entries.slice(0, 8).map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
  return `found ${shown.join(', ')}${entries.length > shown.length ? `, … (${entries.length} entries)` : ''}`;
}

/** Throws a clear error when `root` is not a BraTS folder (missing, empty, Carvana-like, or other). */
export function checkBratsRoot(root: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch {
    throw new Error(`${root}: the BraTS root folder does not exist; ${EXPECTED_LAYOUT}`);
  }
  if (!stat.isDirectory()) throw new Error(`${root}: not a folder; ${EXPECTED_LAYOUT}`);
  const names = new Set(listDir(root).map((e) => e.name));
  if (names.has('Training') || names.has('Validation') || names.has('HGG') || names.has('LGG')) return;
  if (officialFolders(root).training !== null || officialFolders(root).validation !== null || patientFolders(root).length > 0) return;
  const found = describeFound(root);
  if (names.has('train') || names.has('train_masks')) {
    throw new Error(
      `${root}: this looks like a Carvana folder (train/, train_masks/), not BraTS: use the carvana.ingest stage for it; brats.ingest ${EXPECTED_LAYOUT}; ${found}`,
    );
  }
  throw new Error(`${root}: not a BraTS folder: ${EXPECTED_LAYOUT}; ${found}. For another layout, \`flow init ${root}\` detects it and writes a pipeline for it`);
}

/**
 * Patient folders: [subset, relative folder]. Training patients live in `Training/{HGG,LGG}`, or directly in
 * `{HGG,LGG}` when the root is the official training download (MICCAI_BraTS_2019_Data_Training) itself.
 */
/** The official downloads unzipped side by side: `MICCAI_BraTS_2019_Data_Training/`, `..._Validation/`. */
function officialFolders(root: string): { training: string | null; validation: string | null } {
  const dirs = listDir(root).filter((e) => e.isDirectory()).map((e) => e.name);
  return { training: dirs.find((d) => /BraTS.*Training$/i.test(d)) ?? null, validation: dirs.find((d) => /BraTS.*Validation$/i.test(d)) ?? null };
}

/** Sub-folders that are patients (hold `<folder>_flair.nii[.gz]`): the root is the official Validation folder itself. */
function patientFolders(root: string): string[] {
  return listDir(root)
    .filter((e) => e.isDirectory() && ['.nii.gz', '.nii'].some((ext) => fs.existsSync(path.join(root, e.name, `${e.name}_flair${ext}`))))
    .map((e) => e.name);
}

function findPatients(root: string): { subset: BratsSubset; id: string; folder: string }[] {
  const patients: { subset: BratsSubset; id: string; folder: string }[] = [];
  const official = officialFolders(root);
  const trainingDir = fs.existsSync(path.join(root, 'Training')) ? 'Training' : (official.training ?? '');
  const validationDir = fs.existsSync(path.join(root, 'Validation')) ? 'Validation' : official.validation;
  for (const subset of ['HGG', 'LGG'] as const) {
    for (const entry of listDir(path.join(root, trainingDir, subset))) {
      if (entry.isDirectory()) patients.push({ subset, id: entry.name, folder: path.join(trainingDir, subset, entry.name) });
    }
  }
  if (validationDir !== null) {
    for (const entry of listDir(path.join(root, validationDir))) {
      if (entry.isDirectory()) patients.push({ subset: 'Validation', id: entry.name, folder: path.join(validationDir, entry.name) });
    }
  } else if (patients.length === 0) {
    for (const id of patientFolders(root)) patients.push({ subset: 'Validation', id, folder: id });
  }
  return patients;
}

/** `<patient>_<suffix>.nii.gz`, else `.nii`; relative to root, or null when neither exists. */
function findVolume(root: string, folder: string, id: string, suffix: string): string | null {
  for (const ext of ['.nii.gz', '.nii']) {
    const rel = path.join(folder, `${id}_${suffix}${ext}`);
    if (fs.existsSync(path.join(root, rel))) return rel;
  }
  return null;
}

const round = (value: number, digits = 4): number => Number(value.toFixed(digits));

export async function ingestBrats(
  root: string,
  params: BratsIngestParams,
  options: IngestOptions = {},
): Promise<{ index: BratsIndex; report: BratsReport } | null> {
  const absRoot = path.resolve(root);
  checkBratsRoot(absRoot);
  const modalities = params.modalities.length > 0 ? params.modalities : DEFAULT_MODALITIES;
  const labelMap = params.label_map;
  for (const key of Object.keys(labelMap)) {
    if (!/^\d+$/.test(key)) throw new Error(`brats.ingest: label_map key "${key}" is not a non-negative integer label value`);
  }
  const labels = labelSpecFromParams({ labels: labelMap, background: 0, regions: params.regions ?? BRATS_REGIONS }, `${options.paramPath ?? 'params'} (label_map and regions)`);

  const patients = findPatients(absRoot);
  if (patients.length === 0) {
    throw new Error(`${absRoot}: no patient folders under Training/HGG, Training/LGG or Validation; ${EXPECTED_LAYOUT}; ${describeFound(absRoot)}`);
  }

  const samples: BratsSample[] = [];
  const digests = new Map<string, FileDigest>();
  const skipped: { path: string; reason: string }[] = [];
  const warnings: string[] = [];
  const problemFiles: string[] = [];
  const patientReports: BratsPatientReport[] = [];
  const dimsCount: Record<string, number> = {};
  const spacingCount: Record<string, number> = {};
  const datatypes: Record<string, Record<string, number>> = {};
  const intensity: Record<string, IntensityAccumulator> = {};
  const labelVoxels = new Map<number, number>();
  const unexpected: BratsReport['labels']['unexpected'] = [];

  const skip = (rel: string, file: string, reason: string): void => {
    skipped.push({ path: rel, reason });
    problemFiles.push(`${file}: ${reason}`);
  };

  for (let p = 0; p < patients.length; p++) {
    if (options.signal?.aborted) return null;
    const { subset, id, folder } = patients[p]!;
    options.onProgress?.(p, patients.length);
    const wanted = subset === 'Validation' ? modalities : [...modalities, 'seg'];
    const files: Record<string, string> = {};
    const missing: string[] = [];
    for (const suffix of wanted) {
      const rel = findVolume(absRoot, folder, id, suffix);
      if (rel === null) missing.push(suffix);
      else files[suffix] = rel;
    }
    if (missing.length > 0) {
      const expected = missing.map((s) => `${id}_${s}.nii.gz`).join(', ');
      skip(folder, path.join(absRoot, folder, `${id}_${missing[0]}.nii.gz`), `incomplete patient: missing ${missing.join(', ')} (expected ${expected} in ${folder}/)`);
      continue;
    }

    const volumes: Record<string, NiftiVolume> = {};
    const patientDigests: Record<string, FileDigest> = {};
    let broken = false;
    for (const suffix of wanted) {
      try {
        // Read once: the stored bytes are digested for index.json and parsed from the same buffer.
        const file = path.join(absRoot, files[suffix]!);
        const raw = await readNiftiBytes(file);
        patientDigests[suffix] = await digestBytes(raw);
        volumes[suffix] = parseNifti(file, raw);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        // The reader's message starts with the absolute path; the index records paths relative to root.
        skip(files[suffix]!, path.join(absRoot, files[suffix]!), message.replace(`${path.join(absRoot, files[suffix]!)}: `, ''));
        broken = true;
        break;
      }
    }
    if (broken) continue;

    const reference = volumes[wanted[0]!]!;
    const mismatched = wanted.filter((s) => !sameDims3d(volumes[s]!.dims, reference.dims));
    if (mismatched.length > 0) {
      const details = mismatched.map((s) => `${path.basename(files[s]!)} is ${volumes[s]!.dims.join('x')}`).join(', ');
      skip(folder, path.join(absRoot, files[mismatched[0]!]!), `dimensions differ: ${path.basename(files[wanted[0]!]!)} is ${reference.dims.join('x')} but ${details}`);
      continue;
    }
    for (const suffix of wanted) {
      const s = volumes[suffix]!.spacing;
      if (s.some((v, axis) => Math.abs(v - reference.spacing[axis]!) > 1e-3)) {
        warnings.push(`${files[suffix]}: spacing ${s.map((v) => round(v)).join('x')} mm differs from ${files[wanted[0]!]} (${reference.spacing.map((v) => round(v)).join('x')} mm)`);
      }
    }

    const patientDatatypes: Record<string, string> = {};
    for (const suffix of wanted) {
      const volume = volumes[suffix]!;
      patientDatatypes[suffix] = volume.datatype;
      (datatypes[suffix] ??= {})[volume.datatype] = (datatypes[suffix]![volume.datatype] ?? 0) + 1;
    }
    for (const modality of modalities) {
      const acc = (intensity[modality] ??= { min: Infinity, max: -Infinity, sum: 0, sumSquares: 0, count: 0 });
      for (const value of volumes[modality]!.data) {
        if (value === 0) continue;
        if (value < acc.min) acc.min = value;
        if (value > acc.max) acc.max = value;
        acc.sum += value;
        acc.sumSquares += value * value;
        acc.count += 1;
      }
    }
    let patientLabels: Record<string, number> | null = null;
    if (subset !== 'Validation') {
      const counts = new Map<number, number>();
      for (const value of volumes.seg!.data) counts.set(value, (counts.get(value) ?? 0) + 1);
      patientLabels = {};
      for (const [value, voxels] of [...counts].sort((a, b) => a[0] - b[0])) {
        patientLabels[String(value)] = voxels;
        if (!Number.isInteger(value) || value < 0 || value > 255 || labels.classes.some((c) => c.value === value)) continue;
        unexpected.push({ patient: id, file: files.seg!, value, voxels });
      }
      const segValues = volumes.seg!.data;
      const integral = Array.from(counts.keys()).every((v) => Number.isInteger(v) && v >= 0 && v <= 255);
      const outside = integral ? valuesOutsideMap(labels, labelHistogram(Uint8Array.from(segValues))) : [...counts].filter(([v]) => !labels.classes.some((c) => c.value === v)).map(([value, count]) => ({ value, count }));
      if (outside.length > 0) {
        // Same rule as every ingest: the case is skipped, naming the file; strict makes it an error.
        skip(files.seg!, path.join(absRoot, files.seg!), `patient ${id}: ${outsideMapReason(outside, labels, `${options.paramPath ?? 'params'}.label_map`)}`);
        continue;
      }
      for (const [value, voxels] of counts) labelVoxels.set(value, (labelVoxels.get(value) ?? 0) + voxels);
    }

    const dimsKey = reference.dims.slice(0, 3).join('x');
    dimsCount[dimsKey] = (dimsCount[dimsKey] ?? 0) + 1;
    const spacingKey = reference.spacing.map((v) => round(v, 3)).join('x');
    spacingCount[spacingKey] = (spacingCount[spacingKey] ?? 0) + 1;
    patientReports.push({ id, subset, dims: reference.dims, spacing: reference.spacing.map((v) => round(v, 6)), datatypes: patientDatatypes, labels: patientLabels });
    for (const suffix of wanted) digests.set(files[suffix]!, patientDigests[suffix]!);
    samples.push({
      id,
      group: id,
      subset,
      images: Object.fromEntries(modalities.map((m) => [m, files[m]!])),
      label: subset === 'Validation' ? null : files.seg!,
    });
  }
  options.onProgress?.(patients.length, patients.length);

  if (params.strict && problemFiles.length > 0) {
    const more = problemFiles.length > 1 ? ` (and ${problemFiles.length - 1} more problem(s); run with strict: false to see them all in the report)` : '';
    throw new Error(`${problemFiles[0]}${more}`);
  }
  if (samples.length === 0) {
    throw new Error(`${absRoot}: none of the ${patients.length} patient folder(s) is usable: ${skipped.slice(0, 3).map((s) => `${s.path}: ${s.reason}`).join('; ')}`);
  }

  const totalLabelled = [...labelVoxels.values()].reduce((a, b) => a + b, 0);
  const labelValues: BratsReport['labels']['values'] = {};
  for (const [value, voxels] of [...labelVoxels].sort((a, b) => a[0] - b[0])) {
    labelValues[String(value)] = { name: labelMap[String(value)] ?? null, voxels, fraction: totalLabelled > 0 ? round(voxels / totalLabelled, 6) : 0 };
  }
  const bySubset: Record<BratsSubset, number> = { HGG: 0, LGG: 0, Validation: 0 };
  for (const sample of samples) bySubset[sample.subset] += 1;

  const report: BratsReport = {
    dataset: 'brats',
    root: absRoot,
    modalities,
    labelMap,
    counts: { patients: samples.length, bySubset, skipped: skipped.length, warnings: warnings.length },
    dims: dimsCount,
    spacings: spacingCount,
    datatypes,
    intensity: Object.fromEntries(
      Object.entries(intensity).map(([modality, acc]) => {
        const mean = acc.count > 0 ? acc.sum / acc.count : 0;
        const variance = acc.count > 0 ? Math.max(0, acc.sumSquares / acc.count - mean * mean) : 0;
        return [modality, { min: acc.count ? acc.min : 0, max: acc.count ? acc.max : 0, mean: round(mean), std: round(Math.sqrt(variance)), brainVoxels: acc.count }];
      }),
    ),
    labels: { values: labelValues, unexpected },
    patients: patientReports,
    skipped,
    warnings,
  };
  return { index: { dataset: 'brats', root: absRoot, labels, samples, skipped, files: sortedDigests(digests) }, report };
}

export function formatBratsReport(report: BratsReport): string {
  const lines: string[] = [];
  lines.push(`BraTS ingest of ${report.root}`);
  const s = report.counts.bySubset;
  lines.push(`patients: ${report.counts.patients} (HGG ${s.HGG}, LGG ${s.LGG}, Validation ${s.Validation}); skipped ${report.counts.skipped}; warnings ${report.counts.warnings}`);
  lines.push(`dims: ${Object.entries(report.dims).map(([k, n]) => `${k} (${n})`).join(', ')}`);
  lines.push(`spacing (mm): ${Object.entries(report.spacings).map(([k, n]) => `${k} (${n})`).join(', ')}`);
  lines.push(
    `datatypes: ${Object.entries(report.datatypes)
      .map(([m, types]) => `${m} ${Object.entries(types).map(([t, n]) => `${t}×${n}`).join('/')}`)
      .join(', ')}`,
  );
  lines.push('intensity over brain (non-zero) voxels:');
  for (const [modality, st] of Object.entries(report.intensity)) {
    lines.push(`  ${modality.padEnd(6)} min ${round(st.min, 2)}  max ${round(st.max, 2)}  mean ${round(st.mean, 2)}  std ${round(st.std, 2)}  (${st.brainVoxels} voxels)`);
  }
  lines.push('labels:');
  for (const [value, info] of Object.entries(report.labels.values)) {
    lines.push(`  ${value.padStart(3)} ${(info.name ?? 'NOT IN LABEL MAP').padEnd(28)} ${String(info.voxels).padStart(12)} voxels  ${(info.fraction * 100).toFixed(3)}%`);
  }
  for (const u of report.labels.unexpected) lines.push(`  unexpected label ${u.value} in ${u.file} (patient ${u.patient}): ${u.voxels} voxels`);
  if (report.skipped.length > 0) {
    lines.push('skipped:');
    for (const item of report.skipped) lines.push(`  ${item.path}: ${item.reason}`);
  }
  if (report.warnings.length > 0) {
    lines.push('warnings:');
    for (const warning of report.warnings) lines.push(`  ${warning}`);
  }
  return `${lines.join('\n')}\n`;
}

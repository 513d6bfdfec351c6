// Reads and analyses a raw Carvana folder (Kaggle layout: train/<car>_<NN>.jpg + train_masks/<car>_<NN>_mask.gif).
// Pairs images with masks by stem, decodes every file once (a few at a time, so the 5088-image Kaggle set
// streams in constant memory), and accumulates the statistics of the report. Nothing is written here.
import fs from 'node:fs';
import path from 'node:path';
import { decodeMask, decodeRgb, readImageInfo, ImageError, MASK_THRESHOLD } from '../../image/index.js';
import { digestBytes, sortedDigests, type FileDigest } from '../../digest.js';
import type { IngestIndex, SkippedFile } from '../../contracts/ingest-index.js';
import type { LabelSpec } from '../../contracts/labels.js';

export interface CarvanaIngestParams {
  strict: boolean;
  images_dir: string;
  masks_dir: string;
}

export const defaultCarvanaIngestParams: CarvanaIngestParams = { strict: false, images_dir: 'train', masks_dir: 'train_masks' };

export interface CarvanaSample {
  id: string;
  group: string;
  image: string;
  label: string;
}

export type { SkippedFile };

/** Kaggle's masks, once the GIF palette is expanded: 0 background, 255 car. */
export const CARVANA_LABELS: LabelSpec = { classes: [{ value: 0, name: 'background' }, { value: 255, name: 'car' }], ignore: [], regions: { car: [255] } };

export type CarvanaIndex = IngestIndex<CarvanaSample> & { dataset: 'carvana' };

export interface ChannelStats {
  channels: string[];
  min: number[];
  max: number[];
  mean: number[];
  std: number[];
}

export interface CarvanaReport {
  dataset: 'carvana';
  root: string;
  counts: { images: number; masks: number; pairs: number; cars: number; skipped: number; warnings: number };
  anglesPerCar: Record<string, string[]>;
  anglesPerCarHistogram: Record<string, number>;
  imageSizes: Record<string, number>;
  maskSizes: Record<string, number>;
  imageFormats: Record<string, number>;
  maskFormats: Record<string, number>;
  /** Pixel counts of each mask value as stored (palette expanded), over all paired masks. */
  maskValueFrequencies: Record<string, number>;
  /** Masks that needed thresholding (values other than background and one car value). */
  thresholdedMasks: { path: string; pixels: number }[];
  carPixelFraction: { mean: number; min: number; max: number };
  intensity: ChannelStats;
  skipped: SkippedFile[];
  warnings: string[];
}

/** An ingest failure the user must fix (wrong folder, or a bad file under strict). */
export class CarvanaIngestError extends Error {
  override name = 'CarvanaIngestError';
}

const imagePattern = /\.(jpe?g|png)$/i;
const maskPattern = /^(.*)_mask\.(gif|png|jpe?g)$/i;
const stemAngle = /^(.+)_(\d{1,3})$/;

function listFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
}

/** A short description of what a folder holds, for "expected X, found Y" errors. */
function describeFolder(root: string): string {
  const entries = fs.readdirSync(root, { withFileTypes: true }).filter((entry) => !entry.name.startsWith('.'));
  if (entries.length === 0) return 'an empty folder';
  const names = entries.map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name));
  const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? `, ... (${names.length} entries)` : '');
  const bratsLike =
    names.some((name) => /^(Training|Validation|HGG|LGG)\/$/.test(name)) || names.some((name) => /\.nii(\.gz)?$/i.test(name));
  return bratsLike ? `${shown}: this looks like a BraTS dataset; use the brats.ingest stage for it` : shown;
}

function expectedLayout(root: string, params: CarvanaIngestParams): string {
  return `expected the Carvana layout ${path.join(root, params.images_dir)}/<car>_<NN>.jpg with masks ${path.join(root, params.masks_dir)}/<car>_<NN>_mask.gif`;
}

function increment(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

interface PairResult {
  skipped: SkippedFile | null;
  imageDigest: FileDigest | null;
  maskDigest: FileDigest | null;
  warning: string | null;
  imageSize: string;
  imageFormat: string;
  maskSize: string;
  maskFormat: string;
  histogram: number[];
  thresholded: number;
  carFraction: number;
  channelSum: number[];
  channelSquares: number[];
  channelMin: number[];
  channelMax: number[];
  pixels: number;
}

async function analysePair(root: string, image: string, mask: string): Promise<PairResult> {
  const empty: PairResult = {
    skipped: null, imageDigest: null, maskDigest: null, warning: null, imageSize: '', imageFormat: '', maskSize: '', maskFormat: '', histogram: [], thresholded: 0,
    carFraction: 0, channelSum: [0, 0, 0], channelSquares: [0, 0, 0], channelMin: [255, 255, 255], channelMax: [0, 0, 0], pixels: 0,
  };
  const imageFile = path.join(root, image);
  const maskFile = path.join(root, mask);
  let imageRead;
  let maskRead;
  try {
    imageRead = await readDigestDecode(imageFile, (bytes) => decodeRgb(bytes, { label: imageFile }));
  } catch (error) {
    return { ...empty, skipped: { path: image, reason: `broken image: ${detail(error)}` } };
  }
  try {
    maskRead = await readDigestDecode(maskFile, (bytes) => decodeMask(bytes, { label: maskFile }));
  } catch (error) {
    return { ...empty, skipped: { path: mask, reason: `broken mask: ${detail(error)}` } };
  }
  const { decoded: rgb, format: imageFormat, digest: imageDigest } = imageRead;
  const { decoded, format: maskFormat, digest: maskDigest } = maskRead;
  const imageSize = `${rgb.width}x${rgb.height}`;
  const maskSize = `${decoded.mask.width}x${decoded.mask.height}`;
  if (imageSize !== maskSize) {
    return { ...empty, skipped: { path: mask, reason: `mask is ${maskSize} but its image ${image} is ${imageSize} (width x height); they must match` } };
  }
  const result: PairResult = { ...empty, imageDigest, maskDigest, imageSize, imageFormat, maskSize, maskFormat, histogram: decoded.histogram, pixels: rgb.width * rgb.height };
  let car = 0;
  for (let i = 0; i < decoded.mask.data.length; i++) if (decoded.mask.data[i] === 255) car++;
  result.carFraction = car / result.pixels;
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  const min = [255, 255, 255];
  const max = [0, 0, 0];
  const data = rgb.data;
  for (let i = 0; i < data.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const value = data[i + c]!;
      sum[c]! += value;
      squares[c]! += value * value;
      if (value < min[c]!) min[c] = value;
      if (value > max[c]!) max[c] = value;
    }
  }
  Object.assign(result, { channelSum: sum, channelSquares: squares, channelMin: min, channelMax: max });
  if (decoded.nonBinary > 0) {
    result.thresholded = decoded.nonBinary;
    result.warning = `${mask}: ${decoded.nonBinary} pixels have values other than 0/255 (e.g. a mask saved as JPEG); thresholded (> ${MASK_THRESHOLD} is car)`;
  }
  return result;
}

/** Reads a file once: its bytes are digested for index.json and decoded from the same buffer. */
async function readDigestDecode<T>(file: string, decode: (bytes: Uint8Array) => Promise<T>): Promise<{ decoded: T; format: string; digest: FileDigest }> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (error) {
    throw new ImageError(file, `cannot read the file (${(error as Error).message})`);
  }
  const digest = await digestBytes(bytes);
  const format = (await readImageInfo(bytes, file)).format;
  return { decoded: await decode(bytes), format, digest };
}

function detail(error: unknown): string {
  return error instanceof ImageError ? error.detail : (error as Error).message;
}

export interface IngestProgress {
  (done: number, total: number): void;
}

/**
 * Pairs and analyses the folder. Throws CarvanaIngestError for a folder that is not a Carvana layout, for a
 * folder with no usable pair, and (strict) for any skipped file.
 */
export async function ingestCarvana(
  rootInput: string,
  params: CarvanaIngestParams,
  options: { concurrency?: number; onProgress?: IngestProgress; signal?: AbortSignal } = {},
): Promise<{ index: CarvanaIndex; report: CarvanaReport }> {
  const root = path.resolve(rootInput);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new CarvanaIngestError(`carvana.ingest: ${root} is not a folder; ${expectedLayout(root, params)}`);
  }
  const imagesDir = path.join(root, params.images_dir);
  const masksDir = path.join(root, params.masks_dir);
  if (!fs.existsSync(imagesDir) || !fs.statSync(imagesDir).isDirectory()) {
    throw new CarvanaIngestError(
      `carvana.ingest: ${root} has no ${params.images_dir}/ folder; ${expectedLayout(root, params)}, but found ${describeFolder(root)}. ` +
        `For another layout, \`flow init ${root}\` detects it and writes a pipeline for it`,
    );
  }
  const imageNames = listFiles(imagesDir);
  const maskNames = fs.existsSync(masksDir) && fs.statSync(masksDir).isDirectory() ? listFiles(masksDir) : [];
  const images = imageNames.filter((name) => imagePattern.test(name));
  if (images.length === 0) {
    throw new CarvanaIngestError(`carvana.ingest: ${imagesDir} holds no .jpg/.png images; ${expectedLayout(root, params)}, but found ${describeFolder(imagesDir)}`);
  }

  const skipped: SkippedFile[] = [];
  const rel = (dir: string, name: string): string => path.posix.join(dir.split(path.sep).join('/'), name);
  for (const name of imageNames) if (!imagePattern.test(name)) skipped.push({ path: rel(params.images_dir, name), reason: 'not a .jpg/.jpeg/.png image' });

  const masksByStem = new Map<string, string>();
  for (const name of maskNames) {
    const match = maskPattern.exec(name);
    if (match === null) {
      skipped.push({ path: rel(params.masks_dir, name), reason: 'not a mask: expected <car>_<NN>_mask.gif (or .png/.jpg)' });
      continue;
    }
    const stem = match[1]!;
    const previous = masksByStem.get(stem);
    if (previous !== undefined) {
      // Prefer the GIF (Kaggle's own); the other format is a re-saved duplicate.
      const keepNew = /\.gif$/i.test(name) && !/\.gif$/i.test(previous);
      skipped.push({ path: rel(params.masks_dir, keepNew ? previous : name), reason: `duplicate mask for ${stem} (kept ${keepNew ? name : previous})` });
      if (keepNew) masksByStem.set(stem, name);
    } else {
      masksByStem.set(stem, name);
    }
  }

  const pairs: { stem: string; image: string; mask: string }[] = [];
  const imageStems = new Set<string>();
  for (const name of images) {
    const stem = name.replace(imagePattern, '');
    if (imageStems.has(stem)) {
      skipped.push({ path: rel(params.images_dir, name), reason: `duplicate image for ${stem} in another format` });
      continue;
    }
    imageStems.add(stem);
    const mask = masksByStem.get(stem);
    if (mask === undefined) {
      skipped.push({ path: rel(params.images_dir, name), reason: `no mask: expected ${rel(params.masks_dir, `${stem}_mask.gif`)} (or .png/.jpg)` });
      continue;
    }
    pairs.push({ stem, image: rel(params.images_dir, name), mask: rel(params.masks_dir, mask) });
  }
  for (const [stem, mask] of masksByStem) {
    if (!imageStems.has(stem)) skipped.push({ path: rel(params.masks_dir, mask), reason: `no image: expected ${rel(params.images_dir, `${stem}.jpg`)}` });
  }

  // Decode a few pairs at a time: sharp decodes on libuv's thread pool, so this overlaps work without
  // holding more than `concurrency` full-size pictures in memory.
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const results = new Array<PairResult | undefined>(pairs.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < pairs.length) {
      if (options.signal?.aborted) return;
      const at = next++;
      const pair = pairs[at]!;
      results[at] = await analysePair(root, pair.image, pair.mask);
      done++;
      options.onProgress?.(done, pairs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, pairs.length) }, worker));
  if (options.signal?.aborted) throw new CarvanaIngestError('carvana.ingest: interrupted');

  const samples: CarvanaSample[] = [];
  const digests = new Map<string, FileDigest>();
  const warnings: string[] = [];
  const anglesPerCar: Record<string, string[]> = {};
  const imageSizes: Record<string, number> = {};
  const maskSizes: Record<string, number> = {};
  const imageFormats: Record<string, number> = {};
  const maskFormats: Record<string, number> = {};
  const histogram = new Array<number>(256).fill(0);
  const thresholdedMasks: { path: string; pixels: number }[] = [];
  const fraction = { sum: 0, min: Infinity, max: -Infinity };
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  const min = [255, 255, 255];
  const max = [0, 0, 0];
  let pixels = 0;
  pairs.forEach((pair, at) => {
    const result = results[at]!;
    if (result.skipped !== null) {
      skipped.push(result.skipped);
      return;
    }
    const angleMatch = stemAngle.exec(pair.stem);
    const group = angleMatch === null ? pair.stem : angleMatch[1]!;
    if (angleMatch === null) warnings.push(`${pair.image}: file name has no _<NN> angle suffix; the whole stem ${pair.stem} is used as the car id`);
    (anglesPerCar[group] ??= []).push(angleMatch === null ? '' : angleMatch[2]!);
    samples.push({ id: pair.stem, group, image: pair.image, label: pair.mask });
    digests.set(pair.image, result.imageDigest!);
    digests.set(pair.mask, result.maskDigest!);
    if (result.warning !== null) {
      warnings.push(result.warning);
      thresholdedMasks.push({ path: pair.mask, pixels: result.thresholded });
    }
    increment(imageSizes, result.imageSize);
    increment(maskSizes, result.maskSize);
    increment(imageFormats, result.imageFormat);
    increment(maskFormats, result.maskFormat);
    result.histogram.forEach((count, value) => (histogram[value]! += count));
    fraction.sum += result.carFraction;
    fraction.min = Math.min(fraction.min, result.carFraction);
    fraction.max = Math.max(fraction.max, result.carFraction);
    for (let c = 0; c < 3; c++) {
      sum[c]! += result.channelSum[c]!;
      squares[c]! += result.channelSquares[c]!;
      min[c] = Math.min(min[c]!, result.channelMin[c]!);
      max[c] = Math.max(max[c]!, result.channelMax[c]!);
    }
    pixels += result.pixels;
  });
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  if (params.strict && skipped.length > 0) {
    const first = skipped[0]!;
    throw new CarvanaIngestError(
      `carvana.ingest (strict): ${path.join(root, first.path)}: ${first.reason}` +
        (skipped.length > 1 ? ` (and ${skipped.length - 1} more problem file(s): ${skipped.slice(1, 4).map((s) => s.path).join(', ')}${skipped.length > 4 ? ', ...' : ''})` : '') +
        '; fix or remove the file(s), or set strict: false to skip them',
    );
  }
  if (samples.length === 0) {
    throw new CarvanaIngestError(
      `carvana.ingest: no usable image/mask pair under ${root}; ${expectedLayout(root, params)}. Problems: ` +
        skipped.slice(0, 5).map((s) => `${s.path}: ${s.reason}`).join('; '),
    );
  }

  const maskValueFrequencies: Record<string, number> = {};
  histogram.forEach((count, value) => {
    if (count > 0) maskValueFrequencies[String(value)] = count;
  });
  const anglesPerCarHistogram: Record<string, number> = {};
  for (const angles of Object.values(anglesPerCar)) increment(anglesPerCarHistogram, String(angles.length));
  const mean = sum.map((s) => s / pixels);
  const round = (value: number): number => Math.round(value * 1e4) / 1e4;
  const report: CarvanaReport = {
    dataset: 'carvana',
    root,
    counts: {
      images: images.length,
      masks: masksByStem.size,
      pairs: samples.length,
      cars: Object.keys(anglesPerCar).length,
      skipped: skipped.length,
      warnings: warnings.length,
    },
    anglesPerCar,
    anglesPerCarHistogram,
    imageSizes,
    maskSizes,
    imageFormats,
    maskFormats,
    maskValueFrequencies,
    thresholdedMasks,
    carPixelFraction: { mean: round(fraction.sum / samples.length), min: round(fraction.min), max: round(fraction.max) },
    intensity: {
      channels: ['R', 'G', 'B'],
      min,
      max,
      mean: mean.map(round),
      std: squares.map((s, c) => round(Math.sqrt(Math.max(0, s / pixels - mean[c]! * mean[c]!)))),
    },
    skipped,
    warnings,
  };
  return { index: { dataset: 'carvana', root, labels: structuredClone(CARVANA_LABELS), samples, skipped, files: sortedDigests(digests) }, report };
}

/** The short human-readable summary written beside report.json. */
export function formatCarvanaReport(report: CarvanaReport): string {
  const lines: string[] = [];
  const entries = (counts: Record<string, number>): string => Object.entries(counts).map(([key, n]) => `${key} (${n})`).join(', ');
  lines.push(`Carvana dataset at ${report.root}`);
  lines.push(`  ${report.counts.pairs} image/mask pairs of ${report.counts.cars} cars (${report.counts.images} images, ${report.counts.masks} masks)`);
  lines.push(`  angles per car: ${entries(report.anglesPerCarHistogram)}`);
  lines.push(`  image sizes (WxH): ${entries(report.imageSizes)}; formats: ${entries(report.imageFormats)}`);
  lines.push(`  mask formats: ${entries(report.maskFormats)}`);
  const totalMask = Object.values(report.maskValueFrequencies).reduce((a, b) => a + b, 0);
  lines.push(`  mask values: ${Object.entries(report.maskValueFrequencies).map(([value, n]) => `${value}: ${((100 * n) / totalMask).toFixed(2)}%`).join(', ')}`);
  lines.push(`  car pixel fraction: mean ${report.carPixelFraction.mean}, min ${report.carPixelFraction.min}, max ${report.carPixelFraction.max}`);
  const i = report.intensity;
  lines.push(`  intensity ${i.channels.map((c, k) => `${c} ${i.min[k]}..${i.max[k]} mean ${i.mean[k]} std ${i.std[k]}`).join('; ')}`);
  lines.push(`  skipped: ${report.skipped.length}`);
  for (const s of report.skipped) lines.push(`    ${s.path}: ${s.reason}`);
  lines.push(`  warnings: ${report.warnings.length}`);
  for (const w of report.warnings) lines.push(`    ${w}`);
  return lines.join('\n') + '\n';
}

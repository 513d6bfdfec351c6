// Reads and analyses an image/mask pairs folder declared by its layout params (layout.ts): every picture and
// mask is decoded once, a few at a time, and checked (readable, same size, label values in the label map);
// a case that fails is skipped with the file and the reason, or with `strict` the ingest fails naming it.
import fs from 'node:fs';
import path from 'node:path';
import { decodeGray, decodeLabelImage, readImageInfo, ImageError } from '../../image/index.js';
import { digestBytes, sortedDigests, type FileDigest } from '../../digest.js';
import { labelHistogram, labelSpecFromParams, outsideMapReason, valuesOutsideMap, type LabelSpec } from '../../contracts/labels.js';
import type { IngestIndex, SkippedFile } from '../../contracts/ingest-index.js';
import { findPairs, type PairsLayout } from './layout.js';

export interface ImagePairsIngestParams extends PairsLayout {
  labels: Record<string, string>;
  background: number | null;
  ignore: number[];
  regions: Record<string, number[]> | null;
  strict: boolean;
}

export interface ImagePairsSample {
  id: string;
  group: string;
  subset: 'train' | 'test';
  image: string;
  label: string;
}

export type ImagePairsIndex = IngestIndex<ImagePairsSample> & { dataset: 'image-pairs' };

export interface ImagePairsReport {
  dataset: 'image-pairs';
  root: string;
  layout: PairsLayout;
  labels: LabelSpec;
  counts: { images: number; masks: number; pairs: number; groups: number; test: number; skipped: number };
  /** "WxH" → cases. */
  imageSizes: Record<string, number>;
  imageFormats: Record<string, number>;
  /** Channels as stored (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; "palette" for palette files) → cases. */
  imageChannels: Record<string, number>;
  /** Stored mask value → { class name, pixels, fraction of all mask pixels }. */
  labelValues: Record<string, { name: string; pixels: number; fraction: number }>;
  skipped: SkippedFile[];
}

/** An ingest failure the user must fix (a bad layout, or a bad file under strict). */
export class ImagePairsIngestError extends Error {
  override name = 'ImagePairsIngestError';
}

interface Analysed {
  skipped: SkippedFile | null;
  imageDigest?: FileDigest;
  maskDigest?: FileDigest;
  size?: string;
  format?: string;
  channels?: string;
  histogram?: Float64Array;
}

async function readBytes(file: string): Promise<Uint8Array> {
  try {
    return await fs.promises.readFile(file);
  } catch (error) {
    throw new ImageError(file, `cannot read the file (${(error as Error).message})`);
  }
}

function detail(error: unknown): string {
  return error instanceof ImageError ? error.detail : (error as Error).message;
}

async function analyse(root: string, image: string, mask: string, labels: LabelSpec, paramPath: string): Promise<Analysed> {
  let info;
  let imageDigest;
  try {
    const bytes = await readBytes(path.join(root, image));
    imageDigest = await digestBytes(bytes);
    info = await readImageInfo(bytes, path.join(root, image));
    // A full decode catches truncated files the header read would pass.
    await decodeGray(bytes, { size: null, label: path.join(root, image) });
  } catch (error) {
    return { skipped: { path: image, reason: `broken image: ${detail(error)}` } };
  }
  let gray;
  let maskDigest;
  try {
    const bytes = await readBytes(path.join(root, mask));
    maskDigest = await digestBytes(bytes);
    gray = await decodeLabelImage(bytes, { label: path.join(root, mask) });
  } catch (error) {
    return { skipped: { path: mask, reason: `broken mask: ${detail(error)}` } };
  }
  if (gray.width !== info.width || gray.height !== info.height) {
    return { skipped: { path: mask, reason: `mask is ${gray.width}x${gray.height} but its image ${image} is ${info.width}x${info.height} (width x height); they must match` } };
  }
  const histogram = labelHistogram(gray.data);
  const outside = valuesOutsideMap(labels, histogram);
  if (outside.length > 0) return { skipped: { path: mask, reason: outsideMapReason(outside, labels, `${paramPath}.labels`) } };
  return {
    skipped: null,
    imageDigest,
    maskDigest,
    size: `${info.width}x${info.height}`,
    format: info.format,
    channels: info.isPalette ? 'palette' : String(info.channels),
    histogram,
  };
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export async function ingestImagePairs(
  rootInput: string,
  params: ImagePairsIngestParams,
  options: { paramPath?: string; concurrency?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ index: ImagePairsIndex; report: ImagePairsReport } | null> {
  const paramPath = options.paramPath ?? 'params';
  const root = path.resolve(rootInput);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new ImagePairsIngestError(`${root}: not a folder; the image pairs root must hold the images and masks of ${paramPath}.images / .masks`);
  const labels = labelSpecFromParams(params, paramPath);
  let found;
  try {
    found = findPairs(root, params, paramPath);
  } catch (error) {
    throw new ImagePairsIngestError((error as Error).message, { cause: error });
  }
  const results = new Array<Analysed>(found.pairs.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < found.pairs.length) {
      if (options.signal?.aborted) return;
      const at = next++;
      results[at] = await analyse(root, found.pairs[at]!.image, found.pairs[at]!.mask, labels, paramPath);
      options.onProgress?.(++done, found.pairs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, options.concurrency ?? 4), found.pairs.length) }, worker));
  if (options.signal?.aborted) return null;

  const skipped = [...found.skipped];
  const samples: ImagePairsSample[] = [];
  const digests = new Map<string, FileDigest>();
  const imageSizes: Record<string, number> = {};
  const imageFormats: Record<string, number> = {};
  const imageChannels: Record<string, number> = {};
  const histogram = new Float64Array(256);
  found.pairs.forEach((pair, at) => {
    const r = results[at]!;
    if (r.skipped !== null) {
      skipped.push(r.skipped);
      return;
    }
    samples.push({ id: pair.stem, group: pair.group, subset: pair.subset, image: pair.image, label: pair.mask });
    digests.set(pair.image, r.imageDigest!);
    digests.set(pair.mask, r.maskDigest!);
    increment(imageSizes, r.size!);
    increment(imageFormats, r.format!);
    increment(imageChannels, r.channels!);
    r.histogram!.forEach((n, v) => (histogram[v]! += n));
  });
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const problems = skipped.filter((s) => !s.reason.startsWith('not described by the layout'));
  if (params.strict && problems.length > 0) {
    const first = problems[0]!;
    throw new ImagePairsIngestError(
      `image-pairs.ingest (strict): ${path.join(root, first.path)}: ${first.reason}` +
        (problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1, 4).map((s) => s.path).join(', ')})` : '') +
        `; fix or remove the file(s), or set ${paramPath}.strict: false to skip them`,
    );
  }
  if (samples.length === 0) {
    throw new ImagePairsIngestError(
      `image-pairs.ingest: no usable image/mask pair under ${root} (images "${params.images}", masks "${params.masks}"). Problems: ` +
        (skipped.slice(0, 5).map((s) => `${s.path}: ${s.reason}`).join('; ') || 'none matched the images pattern'),
    );
  }
  const total = histogram.reduce((a, b) => a + b, 0);
  const names = new Map(labels.classes.map((c) => [c.value, c.name]));
  for (const v of labels.ignore) names.set(v, 'ignore');
  const labelValues: ImagePairsReport['labelValues'] = {};
  histogram.forEach((n, v) => {
    if (n > 0) labelValues[String(v)] = { name: names.get(v)!, pixels: n, fraction: Math.round((n / total) * 1e6) / 1e6 };
  });
  const report: ImagePairsReport = {
    dataset: 'image-pairs',
    root,
    layout: { images: params.images, masks: params.masks, group: params.group, split_file: params.split_file },
    labels,
    counts: {
      images: found.images,
      masks: found.masks,
      pairs: samples.length,
      groups: new Set(samples.map((s) => s.group)).size,
      test: samples.filter((s) => s.subset === 'test').length,
      skipped: skipped.length,
    },
    imageSizes,
    imageFormats,
    imageChannels,
    labelValues,
    skipped,
  };
  return { index: { dataset: 'image-pairs', root, labels, samples, skipped, files: sortedDigests(digests) }, report };
}

export function formatImagePairsReport(report: ImagePairsReport): string {
  const entries = (counts: Record<string, number>): string => Object.entries(counts).map(([k, n]) => `${k} (${n})`).join(', ');
  const lines = [
    `image/mask pairs at ${report.root}: images ${report.layout.images}, masks ${report.layout.masks}`,
    `  ${report.counts.pairs} pairs in ${report.counts.groups} groups (${report.counts.test} in the official test list); ${report.counts.skipped} skipped`,
    `  image sizes (WxH): ${entries(report.imageSizes)}`,
    `  formats: ${entries(report.imageFormats)}; channels: ${entries(report.imageChannels)}`,
    `  label values: ${Object.entries(report.labelValues).map(([v, l]) => `${v} ${l.name} ${(l.fraction * 100).toFixed(2)}%`).join(', ')}`,
  ];
  for (const s of report.skipped) lines.push(`  skipped ${s.path}: ${s.reason}`);
  return `${lines.join('\n')}\n`;
}

// What the NIfTI layouts (nnU-Net v2 and Medical Segmentation Decathlon from their dataset.json, per-case
// folders from templates) hand the shared volume ingest: cases of channel files (a 3D file each, or `file#k`
// for channel k of a 4D file) and an optional label file, plus the files and disagreements found on the way.
import fs from 'node:fs';
import path from 'node:path';

export interface VolumeCase {
  id: string;
  subset: 'train' | 'test';
  /** Channel name → file (relative to root), `file#k` for channel k of a 4D file. */
  images: Record<string, string>;
  label: string | null;
  /** For 4D files: how many channels dataset.json says the file holds. */
  expectChannels?: number;
}

export interface LayoutCases {
  kind: 'nnunet' | 'msd' | 'folders';
  cases: VolumeCase[];
  /** Files or cases left out, with the reason (never fatal). */
  skipped: { path: string; reason: string }[];
  /** dataset.json facts that disagree with the files (fatal under strict). */
  disagreements: string[];
  /** Stored value → class name, from dataset.json. */
  labels: Record<string, string>;
  /** Values dataset.json marks as not annotated (nnU-Net's "ignore" label). */
  ignore: number[];
  /** Regions dataset.json declares (nnU-Net region-based labels), or null. */
  regions: Record<string, number[]> | null;
  channelNames: string[];
}

export function readDatasetJson(root: string): { file: string; json: Record<string, unknown> } {
  const file = path.join(root, 'dataset.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read (${(error as Error).message}); nnU-Net v2 and Decathlon folders describe themselves in dataset.json`);
  }
  try {
    const json = JSON.parse(text) as unknown;
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error('not a JSON object');
    return { file, json: json as Record<string, unknown> };
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
}

/** Regular files of a folder (relative to root), hidden ones included: `._x.nii.gz` forks must be reported. */
export function folderFiles(root: string, dir: string): string[] {
  try {
    return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => `${dir}/${e.name}`).sort();
  } catch {
    return [];
  }
}

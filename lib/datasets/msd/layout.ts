// The Medical Segmentation Decathlon layout (medicaldecathlon.com): dataset.json with modality
// ({"0": "FLAIR", ...}), labels (value → name), numTraining, and training [{image, label}] / test [image]
// lists of "./imagesTr/<case>.nii.gz" paths. Images are 3D, or 4D with the channels last when there are
// several modalities (Task01_BrainTumour). Real downloads hold macOS `._<case>.nii.gz` forks beside the cases.
import fs from 'node:fs';
import path from 'node:path';
import { folderFiles, readDatasetJson, type LayoutCases, type VolumeCase } from '../volumes/cases.js';

const clean = (p: string): string => path.posix.normalize(p.replace(/^\.\//, ''));

export function readMsdLayout(root: string): LayoutCases {
  const { file, json } = readDatasetJson(root);
  const bad = (what: string): never => {
    throw new Error(`${file}: ${what} (Decathlon dataset.json: modality, labels, training, test)`);
  };
  const modality = json.modality;
  if (modality === null || typeof modality !== 'object') bad('has no modality object');
  const channelNames = Object.entries(modality as Record<string, unknown>).sort((a, b) => Number(a[0]) - Number(b[0])).map(([, n]) => String(n));
  const labelsJson = json.labels;
  if (labelsJson === null || typeof labelsJson !== 'object') bad('has no labels object (value → name)');
  const labels = Object.fromEntries(Object.entries(labelsJson as Record<string, unknown>).map(([v, n]) => [v, String(n)]));
  if (!Array.isArray(json.training)) bad('has no training list');
  const skipped: LayoutCases['skipped'] = [];
  const disagreements: string[] = [];
  const cases: VolumeCase[] = [];
  const listed = new Set<string>();
  const refs = (image: string): Record<string, string> =>
    channelNames.length === 1 ? { [channelNames[0]!]: image } : Object.fromEntries(channelNames.map((name, k) => [name, `${image}#${k}`]));
  (json.training as unknown[]).forEach((entry, i) => {
    const e = entry as { image?: unknown; label?: unknown };
    if (typeof e?.image !== 'string' || typeof e.label !== 'string') bad(`training[${i}] needs "image" and "label" paths`);
    const image = clean(e.image as string);
    const label = clean(e.label as string);
    listed.add(image).add(label);
    const id = path.posix.basename(image).replace(/\.nii(\.gz)?$/, '');
    for (const f of [image, label]) {
      if (!fs.existsSync(path.join(root, f))) {
        skipped.push({ path: f, reason: `case ${id}: listed in dataset.json training[${i}] but the file is missing` });
        disagreements.push(`${file}: training[${i}] names ${f}, which does not exist`);
        return;
      }
    }
    cases.push({ id, subset: 'train', images: refs(image), label, expectChannels: channelNames.length });
  });
  for (const [i, entry] of (Array.isArray(json.test) ? json.test : []).entries()) {
    if (typeof entry !== 'string') continue;
    const image = clean(entry);
    listed.add(image);
    const id = path.posix.basename(image).replace(/\.nii(\.gz)?$/, '');
    if (!fs.existsSync(path.join(root, image))) {
      skipped.push({ path: image, reason: `case ${id}: listed in dataset.json test[${i}] but the file is missing` });
      continue;
    }
    cases.push({ id, subset: 'test', images: refs(image), label: null, expectChannels: channelNames.length });
  }
  for (const dir of ['imagesTr', 'labelsTr', 'imagesTs']) {
    for (const f of folderFiles(root, dir)) {
      if (!listed.has(f)) skipped.push({ path: f, reason: path.posix.basename(f).startsWith('._') ? 'a macOS resource fork, not a case' : 'not listed in dataset.json' });
    }
  }
  if (typeof json.numTraining === 'number' && json.numTraining !== (json.training as unknown[]).length) {
    disagreements.push(`${file}: numTraining is ${json.numTraining} but the training list has ${(json.training as unknown[]).length} entries`);
  }
  return { kind: 'msd', cases, skipped, disagreements, labels, ignore: [], regions: null, channelNames };
}

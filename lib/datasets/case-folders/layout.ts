// The per-case-folder NIfTI layout, declared in YAML: case folders found by a pattern (`Training/*/*`: each
// `*` one folder level; the last level's name is the case id), channel files and a label file named by
// templates inside each folder (`{case}_flair.nii.gz`). BraTS 2019 is one instance of it:
//   cases: "Training/*/*", test_cases: "Validation/*",
//   channels: { flair: "{case}_flair.nii.gz", t1: "{case}_t1.nii.gz", t1ce: "{case}_t1ce.nii.gz", t2: "{case}_t2.nii.gz" },
//   label: "{case}_seg.nii.gz"
import fs from 'node:fs';
import path from 'node:path';
import type { LayoutCases, VolumeCase } from '../volumes/cases.js';

export interface CaseFoldersLayout {
  cases: string;
  test_cases: string | null;
  channels: Record<string, string>;
  label: string;
  labels: Record<string, string>;
}

/** Folders (relative to root, '/'-separated) matching a pattern of plain names and `*` levels. */
function matchFolders(root: string, pattern: string): string[] {
  let current = [''];
  for (const part of pattern.split('/').filter((p) => p !== '' && p !== '.')) {
    const next: string[] = [];
    for (const dir of current) {
      if (part === '*') {
        let entries: fs.Dirent[] = [];
        try {
          entries = fs.readdirSync(path.join(root, dir), { withFileTypes: true });
        } catch {
          continue;
        }
        for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) next.push(dir === '' ? e.name : `${dir}/${e.name}`);
      } else if (fs.existsSync(path.join(root, dir, part))) {
        next.push(dir === '' ? part : `${dir}/${part}`);
      }
    }
    current = next.sort();
  }
  return current.filter((d) => d !== '');
}

export function readCaseFoldersLayout(root: string, layout: CaseFoldersLayout, paramPath: string): LayoutCases {
  const names = Object.keys(layout.channels);
  if (names.length === 0) throw new Error(`${paramPath}.channels: name at least one channel file template, e.g. { flair: "{case}_flair.nii.gz" }`);
  for (const [name, template] of [...Object.entries(layout.channels), ['label', layout.label] as const]) {
    if (!template.includes('{case}') && template !== '') throw new Error(`${paramPath}: the ${name} template "${template}" needs {case} (the case folder's name)`);
  }
  const skipped: LayoutCases['skipped'] = [];
  const cases: VolumeCase[] = [];
  const sets: [string, 'train' | 'test'][] = [[layout.cases, 'train'], ...(layout.test_cases ? [[layout.test_cases, 'test'] as [string, 'test']] : [])];
  for (const [pattern, subset] of sets) {
    const folders = matchFolders(root, pattern);
    if (subset === 'train' && folders.length === 0) throw new Error(`${path.join(root, pattern)}: no case folder matches ${paramPath}.cases "${pattern}"`);
    for (const folder of folders) {
      const id = path.posix.basename(folder);
      const file = (template: string): string => `${folder}/${template.replaceAll('{case}', id)}`;
      const images = Object.fromEntries(names.map((n) => [n, file(layout.channels[n]!)]));
      const label = subset === 'train' ? file(layout.label) : null;
      const missing = Object.entries(images).filter(([, f]) => !fs.existsSync(path.join(root, f)));
      if (missing.length > 0) {
        skipped.push({ path: missing[0]![1], reason: `case ${id}: channel file(s) missing for ${missing.map(([n]) => n).join(', ')} (${paramPath}.channels)` });
        continue;
      }
      if (label !== null && !fs.existsSync(path.join(root, label))) {
        skipped.push({ path: label, reason: `case ${id}: no label file (${paramPath}.label "${layout.label}")` });
        continue;
      }
      const used = new Set([...Object.values(images), ...(label ? [label] : [])]);
      for (const e of fs.readdirSync(path.join(root, folder), { withFileTypes: true })) {
        const f = `${folder}/${e.name}`;
        if (e.isFile() && !used.has(f)) skipped.push({ path: f, reason: `not described by the layout (${paramPath}.channels / .label)` });
      }
      cases.push({ id, subset, images, label });
    }
  }
  return { kind: 'folders', cases, skipped, disagreements: [], labels: layout.labels, ignore: [], regions: null, channelNames: names };
}

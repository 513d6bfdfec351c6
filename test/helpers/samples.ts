// Temp copies of the shipped samples, for tests that edit or break raw files without touching data/samples.
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, samplesDir } from './paths.js';

/** A raw Carvana folder holding the first `count` image/mask pairs of the shipped sample, copied. */
export function copyCarvanaSample(count: number, prefix = 'flow-carvana-raw-'): { root: string; stems: string[] } {
  const source = path.join(samplesDir, 'carvana');
  const root = makeTempDir(prefix);
  fs.mkdirSync(path.join(root, 'train'));
  fs.mkdirSync(path.join(root, 'train_masks'));
  const stems = fs.readdirSync(path.join(source, 'train')).sort().slice(0, count).map((name) => name.replace(/\.jpg$/, ''));
  for (const stem of stems) {
    fs.copyFileSync(path.join(source, 'train', `${stem}.jpg`), path.join(root, 'train', `${stem}.jpg`));
    fs.copyFileSync(path.join(source, 'train_masks', `${stem}_mask.gif`), path.join(root, 'train_masks', `${stem}_mask.gif`));
  }
  return { root, stems };
}

// `flow init`'s layout detection: which known raw layout a folder holds, from its files alone. Generic image
// pairs are found by matching stems: a folder of pictures and a folder of masks whose names are the
// pictures' stems plus one common suffix (ISIC's `_segmentation`, Carvana's `_mask`, or none).
import fs from 'node:fs';
import path from 'node:path';

export type Layout =
  | { kind: 'carvana' }
  | { kind: 'brats' }
  | { kind: 'nnunet'; datasetJson: string }
  | { kind: 'msd'; datasetJson: string }
  | { kind: 'image-pairs'; images: string; masks: string; splitFile: string | null };

const PICTURE = /\.(jpe?g|png|gif|tiff?|webp|bmp)$/i;
const MASK = /\.(png|gif|tiff?|bmp)$/i;

export const KNOWN_LAYOUTS = [
  'nnU-Net v2 raw (dataset.json with channel_names + imagesTr/ labelsTr/)',
  'Medical Segmentation Decathlon (dataset.json with modality + imagesTr/ labelsTr/)',
  'Carvana (train/ + train_masks/)',
  'BraTS 2019 (Training/{HGG,LGG}/<patient>/, Validation/, or the official folders)',
  'image/mask pairs (a folder of pictures and a folder of masks named <stem><suffix>.png)',
];

function dirs(root: string, depth: number, prefix = ''): string[] {
  if (depth < 0) return [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(root, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    out.push(rel, ...dirs(root, depth - 1, rel));
  }
  return out;
}

function files(root: string, dir: string): string[] {
  try {
    return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

const stemOf = (name: string): string => name.replace(/\.[^.]+$/, '');

/** The best pictures/masks folder pair under root: most masks matched by one suffix. */
function findPairFolders(root: string): { images: string; masks: string; matched: number } | null {
  const candidates = ['.', ...dirs(root, 3)];
  let best: { images: string; masks: string; matched: number } | null = null;
  for (const imageDir of candidates) {
    const pictures = files(root, imageDir).filter((f) => PICTURE.test(f));
    if (pictures.length === 0) continue;
    const stems = new Set(pictures.map(stemOf));
    for (const maskDir of candidates) {
      if (maskDir === imageDir) continue;
      const suffixes = new Map<string, number>();
      for (const name of files(root, maskDir).filter((f) => MASK.test(f))) {
        const stem = stemOf(name);
        for (let cut = stem.length; cut > 0; cut--) {
          if (stems.has(stem.slice(0, cut))) {
            const key = `${stem.slice(cut)}${path.extname(name)}`;
            suffixes.set(key, (suffixes.get(key) ?? 0) + 1);
            break;
          }
        }
      }
      const [suffix, matched] = [...suffixes].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
      if (matched > 0 && (best === null || matched > best.matched)) {
        const ext = new Set(pictures.map((p) => path.extname(p).slice(1).toLowerCase()));
        const imagePattern = `${imageDir === '.' ? '' : `${imageDir}/`}*.${ext.size === 1 ? [...ext][0] : `{${[...ext].join(',')}}`}`;
        best = { images: imagePattern, masks: `${maskDir === '.' ? '' : `${maskDir}/`}{stem}${suffix}`, matched };
      }
    }
  }
  return best;
}

/** A list file naming official test cases (Oxford-IIIT Pet's annotations/test.txt), relative to root. */
function findSplitFile(root: string): string | null {
  for (const dir of ['.', ...dirs(root, 2)]) {
    for (const name of ['test.txt', 'test_list.txt']) if (fs.existsSync(path.join(root, dir, name))) return dir === '.' ? name : `${dir}/${name}`;
  }
  return null;
}

export function describeFolder(root: string): string {
  const entries = fs.readdirSync(root, { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
  if (entries.length === 0) return 'an empty folder';
  const shown = entries.slice(0, 10).map((e) => (e.isDirectory() ? `${e.name}/ (${files(root, e.name).length} files)` : e.name));
  return shown.join(', ') + (entries.length > 10 ? `, … (${entries.length} entries)` : '');
}

export function detectLayout(root: string): Layout {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`${root}: not a folder`);
  const json = path.join(root, 'dataset.json');
  if (fs.existsSync(json)) {
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(fs.readFileSync(json, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${json}: not valid JSON (${(error as Error).message}); nnU-Net and MSD layouts describe themselves there`);
    }
    if ('channel_names' in parsed) return { kind: 'nnunet', datasetJson: json };
    if ('modality' in parsed) return { kind: 'msd', datasetJson: json };
  }
  const names = new Set(fs.readdirSync(root));
  if (names.has('train') && names.has('train_masks')) return { kind: 'carvana' };
  if (['Training', 'Validation', 'HGG', 'LGG'].some((n) => names.has(n)) || [...names].some((n) => /BraTS.*(Training|Validation)$/i.test(n))) return { kind: 'brats' };
  const pairs = findPairFolders(root);
  if (pairs !== null) return { kind: 'image-pairs', images: pairs.images, masks: pairs.masks, splitFile: findSplitFile(root) };
  throw new Error(`${root}: flow init cannot tell which layout this is. Found: ${describeFolder(root)}. Known layouts: ${KNOWN_LAYOUTS.join('; ')}`);
}

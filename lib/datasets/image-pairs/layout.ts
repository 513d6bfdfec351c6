// The image/mask pairs layout, declared in YAML: an images pattern (`Training_Input/*.jpg`: a folder and a
// file pattern whose one `*` is the case's stem; `{jpg,png}` gives alternatives), a masks template
// (`GroundTruth/{stem}_segmentation.png`), an optional group pattern (a regex on the stem whose first capture
// group is the group: Carvana's car id is `^(.+)_\d+$`) and an optional list file naming the official test cases.
import fs from 'node:fs';
import path from 'node:path';

export interface PairsLayout {
  images: string;
  masks: string;
  group: string | null;
  split_file: string | null;
}

export interface FoundPair {
  stem: string;
  group: string;
  image: string;
  mask: string;
  subset: 'train' | 'test';
}

export interface LayoutResult {
  pairs: FoundPair[];
  skipped: { path: string; reason: string }[];
  /** Image files matched (paired or not). */
  images: number;
  masks: number;
}

function escapeRegex(text: string): string {
  return text.replace(/[.+^$()|[\]\\]/g, '\\$&');
}

/** A file-name pattern → regex: `*` captures the stem, `?` one character, `{a,b}` alternatives. */
function patternRegex(pattern: string, where: string, stem: string | null = null): RegExp {
  let out = '';
  let stars = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (pattern.startsWith('{stem}', i)) {
      if (stem === null) throw new Error(`${where}: {stem} belongs in the masks template, not the images pattern`);
      out += escapeRegex(stem);
      i += 5;
    } else if (c === '*') {
      if (stem !== null) throw new Error(`${where}: the masks template names the stem as {stem}, not *`);
      if (++stars > 1) throw new Error(`${where}: use one * (the stem) in the file name pattern "${pattern}"`);
      out += '(.+?)';
    } else if (c === '?') {
      out += '.';
    } else if (c === '{') {
      const end = pattern.indexOf('}', i);
      if (end < 0) throw new Error(`${where}: unclosed { in "${pattern}"`);
      out += `(?:${pattern.slice(i + 1, end).split(',').map(escapeRegex).join('|')})`;
      i = end;
    } else {
      out += escapeRegex(c);
    }
  }
  if (stem === null && stars !== 1) throw new Error(`${where}: the images pattern "${pattern}" needs one * in its file name (the stem that pairs it with its mask)`);
  return new RegExp(`^${out}$`, 'i');
}

function splitPattern(pattern: string, where: string): { dir: string; file: string } {
  const normalized = pattern.split(path.sep).join('/');
  const at = normalized.lastIndexOf('/');
  const dir = at < 0 ? '.' : normalized.slice(0, at);
  if (/[*?{]/.test(dir.replace('{stem}', ''))) throw new Error(`${where}: patterns apply to file names only; "${dir}" must be a plain folder`);
  return { dir, file: at < 0 ? normalized : normalized.slice(at + 1) };
}

function listFiles(root: string, dir: string): string[] {
  const full = path.join(root, dir);
  if (!fs.existsSync(full) || !fs.statSync(full).isDirectory()) return [];
  return fs.readdirSync(full, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
}

/** Stems of a list file: the first token of each non-empty, non-comment line (Oxford-IIIT Pet's test.txt). */
export function readListFile(file: string): Set<string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read the split list file (${(error as Error).message}); fix params.split_file`);
  }
  const stems = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const token = line.trim().split(/[\s,]+/)[0];
    if (token && !token.startsWith('#')) stems.add(token.replace(/\.[A-Za-z0-9]+$/, ''));
  }
  return stems;
}

/** Pairs images and masks under `root`; files the layout does not describe are listed as skipped. */
export function findPairs(root: string, layout: PairsLayout, paramPath: string): LayoutResult {
  const images = splitPattern(layout.images, `${paramPath}.images`);
  const masks = splitPattern(layout.masks, `${paramPath}.masks`);
  if (!masks.file.includes('{stem}')) throw new Error(`${paramPath}.masks: the template "${layout.masks}" needs {stem} (the image's stem), e.g. "masks/{stem}.png"`);
  const imageRe = patternRegex(images.file, `${paramPath}.images`);
  const anyMask = patternRegex(masks.file.replace('{stem}', '*'), `${paramPath}.masks`);
  const group = layout.group === null ? null : new RegExp(layout.group);
  const rel = (dir: string, name: string): string => (dir === '.' ? name : `${dir}/${name}`);
  const imageFiles = listFiles(root, images.dir);
  const maskFiles = masks.dir === images.dir ? imageFiles : listFiles(root, masks.dir);
  if (imageFiles.length === 0) throw new Error(`${path.join(root, images.dir)}: no files; ${paramPath}.images is "${layout.images}"`);
  const test = layout.split_file === null ? null : readListFile(path.resolve(root, layout.split_file));
  const skipped: LayoutResult['skipped'] = [];
  const used = new Set<string>();
  const pairs: FoundPair[] = [];
  const stems = new Map<string, string>();
  // Each mask file's stem, read once by the template (a lookup per image, not a scan of every mask).
  const masksByStem = new Map<string, string>();
  for (const name of maskFiles) {
    const m = anyMask.exec(name);
    if (m !== null && !masksByStem.has(m[1]!.toLowerCase())) masksByStem.set(m[1]!.toLowerCase(), name);
  }
  let matched = 0;
  for (const name of imageFiles) {
    const m = imageRe.exec(name);
    if (m === null) continue;
    const stem = m[1]!;
    // In one folder, a mask can match the images pattern too (x.png and x_mask.png): it is taken as a mask.
    if (masks.dir === images.dir && anyMask.test(name)) continue;
    matched++;
    if (stems.has(stem)) {
      skipped.push({ path: rel(images.dir, name), reason: `a second image with stem ${stem} (kept ${stems.get(stem)})` });
      continue;
    }
    stems.set(stem, name);
    used.add(rel(images.dir, name));
    const mask = masksByStem.get(stem.toLowerCase());
    if (mask === undefined) {
      skipped.push({ path: rel(images.dir, name), reason: `no mask: expected ${rel(masks.dir, masks.file.replace('{stem}', stem))} (${paramPath}.masks)` });
      continue;
    }
    used.add(rel(masks.dir, mask));
    let groupName = stem;
    if (group !== null) {
      const g = group.exec(stem);
      if (g === null || g[1] === undefined) {
        skipped.push({ path: rel(images.dir, name), reason: `stem ${stem} does not match the group pattern ${layout.group} (${paramPath}.group)` });
        continue;
      }
      groupName = g[1];
    }
    pairs.push({ stem, group: groupName, image: rel(images.dir, name), mask: rel(masks.dir, mask), subset: test?.has(stem) ? 'test' : 'train' });
  }
  const maskCount = maskFiles.filter((f) => anyMask.test(f)).length;
  for (const dir of new Set([images.dir, masks.dir])) {
    for (const name of listFiles(root, dir)) {
      const file = rel(dir, name);
      if (used.has(file) || skipped.some((s) => s.path === file)) continue;
      const mask = dir === masks.dir && anyMask.test(name);
      skipped.push({ path: file, reason: mask ? 'a mask without an image' : `not described by the layout (${paramPath}.images / .masks)` });
    }
  }
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { pairs, skipped, images: matched, masks: maskCount };
}

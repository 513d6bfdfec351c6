// BraTS preprocessing math shared by preprocess.brats (training data) and the BraTS dataset adapter
// (prediction), so both feed the model exactly the same numbers: decode the record, per-modality z-score
// over brain (non-zero) voxels, crop to the brain bounding box, label remap (4 → 3), axial slices resized
// to the model size (bilinear for images, nearest for labels) or 3D patches and the tiles that cover the
// brain box, and the way back for predictions (slices un-resized, tiles stitched by averaging).
import type { Features } from '../tfrecord/example.js';
import { getBytes, getFloats, getInts, getString, getStrings } from '../tfrecord/example.js';

/** One patient as decoded from a BraTS record (docs/contracts.md "BraTS features"). */
export interface BratsVolume {
  id: string;
  group: string;
  subset: string;
  /** [X, Y, Z] (NIfTI order). */
  shape: [number, number, number];
  modalities: string[];
  /** float32, [M][Z][Y][X]. */
  data: Float32Array;
  spacing: number[];
  affine: number[];
  /** uint8 [Z][Y][X] in the dataset's own values, or null (Validation). */
  label: Uint8Array | null;
}

/** Inclusive-exclusive box in voxel indices. */
export interface BrainBox {
  x: [number, number];
  y: [number, number];
  z: [number, number];
}

export type LabelRemap = Record<string, number>;
export const DEFAULT_TRAIN_LABEL_MAP: LabelRemap = { '0': 0, '1': 1, '2': 2, '4': 3 };

function copyAligned(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

/** Decodes a BraTS Example; `where` names the record in errors (e.g. "part-00000-of-00001.tfrecord record 3"). */
export function decodeBratsExample(features: Features, where = 'record'): BratsVolume {
  const id = getString(features, 'id');
  const shape = getInts(features, 'volume/shape');
  if (shape.length !== 3 || shape.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`${where} (${id}): volume/shape must be 3 positive integers [X, Y, Z], got [${shape.join(', ')}]`);
  }
  const [X, Y, Z] = shape as [number, number, number];
  const modalities = getStrings(features, 'volume/modalities');
  const raw = getBytes(features, 'volume/data');
  const expected = modalities.length * X * Y * Z * 4;
  if (raw.byteLength !== expected) {
    throw new Error(`${where} (${id}): volume/data has ${raw.byteLength} bytes, ${modalities.length} modalities of ${X}x${Y}x${Z} float32 need ${expected}`);
  }
  const data = new Float32Array(copyAligned(raw));
  let label: Uint8Array | null = null;
  if (features['label/data'] !== undefined && features['label/data'].kind === 'bytes') {
    const bytes = getBytes(features, 'label/data');
    if (bytes.byteLength !== X * Y * Z) {
      throw new Error(`${where} (${id}): label/data has ${bytes.byteLength} bytes, ${X}x${Y}x${Z} uint8 need ${X * Y * Z}`);
    }
    label = new Uint8Array(bytes);
  }
  return {
    id,
    group: features.group ? getString(features, 'group') : id,
    subset: features.subset ? getString(features, 'subset') : '',
    shape: [X, Y, Z],
    modalities,
    data,
    spacing: Array.from(getFloats(features, 'volume/spacing')),
    affine: Array.from(getFloats(features, 'volume/affine')),
    label,
  };
}

/** Reorders the record's modalities to `wanted` (the channel order training used); errors name what is missing. */
export function modalityOrder(volume: BratsVolume, wanted: string[]): number[] {
  return wanted.map((m) => {
    const at = volume.modalities.indexOf(m);
    if (at < 0) throw new Error(`patient ${volume.id}: modality ${m} is not in the record (has ${volume.modalities.join(', ')})`);
    return at;
  });
}

/** Brain box: bounding box of voxels non-zero in any modality (union). Null when the volume is all zero. */
export function brainBoundingBox(volume: BratsVolume): BrainBox | null {
  const [X, Y, Z] = volume.shape;
  const n = X * Y * Z;
  let x0 = X, x1 = -1, y0 = Y, y1 = -1, z0 = Z, z1 = -1;
  for (let m = 0; m < volume.modalities.length; m++) {
    const base = m * n;
    for (let z = 0; z < Z; z++) {
      for (let y = 0; y < Y; y++) {
        const row = base + (z * Y + y) * X;
        for (let x = 0; x < X; x++) {
          if (volume.data[row + x] !== 0) {
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
            if (z < z0) z0 = z;
            if (z > z1) z1 = z;
          }
        }
      }
    }
  }
  if (x1 < 0) return null;
  return { x: [x0, x1 + 1], y: [y0, y1 + 1], z: [z0, z1 + 1] };
}

/**
 * Per-modality z-score over that modality's non-zero voxels, in place; background (0) stays 0 so the brain
 * outline survives. Returns the statistics used (recorded for inspection).
 */
/**
 * Clips the named channels to [lo, hi] before the z-score (CT: nnU-Net's rule clips to the 0.5 and 99.5
 * percentiles of the foreground voxels, so air and metal do not dominate the statistics). Channels not named
 * are left as they are.
 */
export function clipChannels(volume: BratsVolume, clip: Record<string, [number, number]>): void {
  const [X, Y, Z] = volume.shape;
  const n = X * Y * Z;
  for (const [channel, [lo, hi]] of Object.entries(clip)) {
    const m = volume.modalities.indexOf(channel);
    if (m < 0) throw new Error(`case ${volume.id}: clip names channel ${channel}, the record has ${volume.modalities.join(', ')}`);
    for (let i = m * n; i < (m + 1) * n; i++) {
      const v = volume.data[i]!;
      volume.data[i] = v < lo ? lo : v > hi ? hi : v;
    }
  }
}

export function zscoreBrain(volume: BratsVolume): { mean: number[]; std: number[] } {
  const [X, Y, Z] = volume.shape;
  const n = X * Y * Z;
  const mean: number[] = [];
  const std: number[] = [];
  for (let m = 0; m < volume.modalities.length; m++) {
    const base = m * n;
    let sum = 0, squares = 0, count = 0;
    for (let i = base; i < base + n; i++) {
      const v = volume.data[i]!;
      if (v !== 0) {
        sum += v;
        squares += v * v;
        count++;
      }
    }
    const mu = count > 0 ? sum / count : 0;
    const sigma = count > 1 ? Math.sqrt(Math.max(0, squares / count - mu * mu)) : 0;
    const scale = sigma > 1e-8 ? 1 / sigma : 1;
    for (let i = base; i < base + n; i++) {
      const v = volume.data[i]!;
      if (v !== 0) volume.data[i] = (v - mu) * scale;
    }
    mean.push(mu);
    std.push(sigma > 1e-8 ? sigma : 1);
  }
  return { mean, std };
}

/** Applies a label map (value → class) to a label volume; a value outside the map is an error naming the patient. */
export function remapLabels(label: Uint8Array, map: LabelRemap, patient: string, shape?: readonly number[], where = `patient ${patient}`): Uint8Array {
  const table = new Int16Array(256).fill(-1);
  for (const [from, to] of Object.entries(map)) table[Number(from)] = to;
  const out = new Uint8Array(label.length);
  for (let i = 0; i < label.length; i++) {
    const to = table[label[i]!]!;
    if (to < 0) {
      // Voxel as (x, y, z) of the NIfTI grid, as a viewer shows it, when the shape [X, Y, Z] is known.
      const at = shape ? `(x ${i % shape[0]!}, y ${Math.floor(i / shape[0]!) % shape[1]!}, z ${Math.floor(i / (shape[0]! * shape[1]!))})` : `${i}`;
      throw new Error(`${where}: label value ${label[i]} at voxel ${at} is not in the label map {${Object.keys(map).join(', ')}}; set the ingest stage's label_map to this edition's values (ingest then skips such patients, naming the file)`);
    }
    out[i] = to;
  }
  return out;
}

/** The inverse of a training label map (class → dataset value), e.g. {0:0, 1:1, 2:2, 3:4}. */
export function invertLabelMap(map: LabelRemap): number[] {
  const inverse: number[] = [];
  for (const [from, to] of Object.entries(map)) inverse[to] = Number(from);
  return inverse;
}

/** Bilinear resize of an [H, W, C] float image to [h, w, C] (pixel centres aligned, as sharp/TF half-pixel do). */
export function resizeBilinear(src: Float32Array, H: number, W: number, C: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * C);
  if (H === h && W === w) {
    out.set(src);
    return out;
  }
  const sy = H / h;
  const sx = W / w;
  for (let oy = 0; oy < h; oy++) {
    const fy = Math.min(Math.max((oy + 0.5) * sy - 0.5, 0), H - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, H - 1);
    const wy = fy - y0;
    for (let ox = 0; ox < w; ox++) {
      const fx = Math.min(Math.max((ox + 0.5) * sx - 0.5, 0), W - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, W - 1);
      const wx = fx - x0;
      const o = (oy * w + ox) * C;
      const a = (y0 * W + x0) * C, b = (y0 * W + x1) * C, c = (y1 * W + x0) * C, d = (y1 * W + x1) * C;
      for (let k = 0; k < C; k++) {
        const top = src[a + k]! + (src[b + k]! - src[a + k]!) * wx;
        const bottom = src[c + k]! + (src[d + k]! - src[c + k]!) * wx;
        out[o + k] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

/** Nearest-neighbour resize of an [H, W] uint8 map to [h, w] (for labels: never invents a class). */
export function resizeNearest(src: Uint8Array, H: number, W: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  for (let oy = 0; oy < h; oy++) {
    const iy = Math.min(H - 1, Math.floor(((oy + 0.5) * H) / h));
    for (let ox = 0; ox < w; ox++) {
      const ix = Math.min(W - 1, Math.floor(((ox + 0.5) * W) / w));
      out[oy * w + ox] = src[iy * W + ix]!;
    }
  }
  return out;
}

/** One axial slice z of the box, channels last: [boxH, boxW, M] in `order`'s modality order. */
export function axialSlice(volume: BratsVolume, box: BrainBox, z: number, order: number[]): Float32Array {
  const [X, Y, Z] = volume.shape;
  const n = X * Y * Z;
  const h = box.y[1] - box.y[0];
  const w = box.x[1] - box.x[0];
  const C = order.length;
  const out = new Float32Array(h * w * C);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const voxel = (z * Y + (y + box.y[0])) * X + (x + box.x[0]);
      for (let c = 0; c < C; c++) out[(y * w + x) * C + c] = volume.data[order[c]! * n + voxel]!;
    }
  }
  return out;
}

/** The label slice z inside the box: [boxH, boxW]. */
export function labelSlice(label: Uint8Array, shape: [number, number, number], box: BrainBox, z: number): Uint8Array {
  const [X, Y] = shape;
  const h = box.y[1] - box.y[0];
  const w = box.x[1] - box.x[0];
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    const row = (z * Y + (y + box.y[0])) * X + box.x[0];
    out.set(label.subarray(row, row + w), y * w);
  }
  return out;
}

/** Model input for slice z: the box slice resized to size [H, W], channels last. */
export function sliceInput(volume: BratsVolume, box: BrainBox, z: number, order: number[], size: [number, number]): Float32Array {
  const h = box.y[1] - box.y[0];
  const w = box.x[1] - box.x[0];
  return resizeBilinear(axialSlice(volume, box, z, order), h, w, order.length, size[0], size[1]);
}

/** Target for slice z: the remapped label slice resized (nearest) to size [H, W]. */
export function sliceTarget(classes: Uint8Array, shape: [number, number, number], box: BrainBox, z: number, size: [number, number]): Uint8Array {
  const h = box.y[1] - box.y[0];
  const w = box.x[1] - box.x[0];
  return resizeNearest(labelSlice(classes, shape, box, z), h, w, size[0], size[1]);
}

/** With one sigmoid channel, a pixel is class 1 where the probability is at least this. */
export const SINGLE_CHANNEL_THRESHOLD = 0.5;

/** Argmax over `channels` per pixel of [count, H, W, channels] probabilities (1 channel: >= SINGLE_CHANNEL_THRESHOLD). */
export function argmaxClasses(probabilities: Float32Array, channels: number): Uint8Array {
  if (channels === 1) return Uint8Array.from(probabilities, (p) => (p >= SINGLE_CHANNEL_THRESHOLD ? 1 : 0));
  const pixels = probabilities.length / channels;
  const out = new Uint8Array(pixels);
  for (let p = 0; p < pixels; p++) {
    let best = 0;
    let bestValue = probabilities[p * channels]!;
    for (let c = 1; c < channels; c++) {
      const v = probabilities[p * channels + c]!;
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    out[p] = best;
  }
  return out;
}

/**
 * Back to the full volume: per-slice class maps [count = boxD, H, W] → nearest-resized into the box →
 * classes mapped to dataset values via `inverse` → uint8 [Z][Y][X], zero outside the box.
 */
export function uncropSlices(
  classes: Uint8Array,
  size: [number, number],
  box: BrainBox,
  shape: [number, number, number],
  inverse: number[],
): Uint8Array {
  const [X, Y, Z] = shape;
  const out = new Uint8Array(X * Y * Z);
  const h = box.y[1] - box.y[0];
  const w = box.x[1] - box.x[0];
  const depth = box.z[1] - box.z[0];
  const per = size[0] * size[1];
  if (classes.length !== depth * per) throw new Error(`uncropSlices: got ${classes.length} class values, ${depth} slices of ${size.join('x')} need ${depth * per}`);
  for (let k = 0; k < depth; k++) {
    const slice = resizeNearest(classes.subarray(k * per, (k + 1) * per), size[0], size[1], h, w);
    const z = box.z[0] + k;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const cls = slice[y * w + x]!;
        const value = inverse[cls];
        if (value === undefined) throw new Error(`uncropSlices: class ${cls} has no dataset value in the label map`);
        out[(z * Y + y + box.y[0]) * X + x + box.x[0]] = value;
      }
    }
  }
  return out;
}

/**
 * A [D, H, W, M] patch (channels last) whose first voxel is at (z0, y0, x0) in volume coordinates; voxels
 * outside the volume are 0 (the background value after z-score). Labels (if given) come as [D, H, W].
 */
export function extractPatch(
  volume: BratsVolume,
  classes: Uint8Array | null,
  start: [number, number, number],
  patch: [number, number, number],
  order: number[],
): { x: Float32Array; y: Uint8Array | null } {
  const [X, Y, Z] = volume.shape;
  const n = X * Y * Z;
  const [D, H, W] = patch;
  const C = order.length;
  const x = new Float32Array(D * H * W * C);
  const y = classes ? new Uint8Array(D * H * W) : null;
  for (let d = 0; d < D; d++) {
    const z = start[0] + d;
    if (z < 0 || z >= Z) continue;
    for (let h = 0; h < H; h++) {
      const yy = start[1] + h;
      if (yy < 0 || yy >= Y) continue;
      for (let w = 0; w < W; w++) {
        const xx = start[2] + w;
        if (xx < 0 || xx >= X) continue;
        const voxel = (z * Y + yy) * X + xx;
        const o = (d * H + h) * W + w;
        for (let c = 0; c < C; c++) x[o * C + c] = volume.data[order[c]! * n + voxel]!;
        if (y && classes) y[o] = classes[voxel]!;
      }
    }
  }
  return { x, y };
}

/**
 * The tiling rule of patches3d validation and prediction, recorded in transform.json `tiling` so the adapter
 * replays exactly the tiles training was validated on (it refuses any other rule).
 */
export const BOX_TILING = 'brain-box-grid';

/**
 * Tile starts along one axis for the box span [lo, hi) and tiles of `size` voxels: a span longer than the tile
 * is stepped by `size` from lo and the last tile is moved back to end at hi (it overlaps its neighbour), so
 * every tile lies inside the span; a span no longer than the tile gets one tile centred on it (it reaches
 * outside the span, where extractPatch reads 0 beyond the volume).
 */
export function tileStarts(lo: number, hi: number, size: number): number[] {
  const span = hi - lo;
  if (span <= size) return [lo - Math.floor((size - span) / 2)];
  const starts: number[] = [];
  for (let start = lo; start + size < hi; start += size) starts.push(start);
  starts.push(hi - size);
  return starts;
}

/**
 * Starts [z, y, x] of the `patch` [D, H, W] tiles that cover every voxel of `box` (tileStarts per axis, z
 * slowest, x fastest). `volumeShape` is [X, Y, Z] (NIfTI order, as BratsVolume.shape); the box must lie in it.
 */
export function tilePatches(box: BrainBox, patch: [number, number, number], volumeShape: [number, number, number]): [number, number, number][] {
  if (patch.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`tilePatches: patch must be 3 positive integers [D, H, W], got [${patch.join(', ')}]`);
  const [X, Y, Z] = volumeShape;
  const spans: [string, [number, number], number][] = [['z', box.z, Z], ['y', box.y, Y], ['x', box.x, X]];
  for (const [axis, [lo, hi], extent] of spans) {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo < hi && hi <= extent)) {
      throw new Error(`tilePatches: box ${axis} [${lo}, ${hi}) is empty or outside the volume's 0..${extent}`);
    }
  }
  const starts: [number, number, number][] = [];
  for (const z of tileStarts(box.z[0], box.z[1], patch[0])) {
    for (const y of tileStarts(box.y[0], box.y[1], patch[1])) {
      for (const x of tileStarts(box.x[0], box.x[1], patch[2])) starts.push([z, y, x]);
    }
  }
  return starts;
}

/**
 * Per-tile model outputs [tiles][D][H][W][channels] (tile k at `starts[k]`) → the average over the tiles that
 * hold each box voxel, [boxD][boxH][boxW][channels]; tile voxels outside the box are dropped (nothing outside
 * the brain box is predicted, as in slices2d). Every box voxel must be covered by some tile.
 */
export function stitchTiles(
  probabilities: Float32Array,
  channels: number,
  starts: [number, number, number][],
  patch: [number, number, number],
  box: BrainBox,
): Float32Array {
  const [D, H, W] = patch;
  const perTile = D * H * W * channels;
  if (probabilities.length !== starts.length * perTile) {
    throw new Error(`stitchTiles: got ${probabilities.length} values, ${starts.length} tiles of ${D}x${H}x${W}x${channels} need ${starts.length * perTile}`);
  }
  const bd = box.z[1] - box.z[0];
  const bh = box.y[1] - box.y[0];
  const bw = box.x[1] - box.x[0];
  const sums = new Float32Array(bd * bh * bw * channels);
  const covered = new Uint16Array(bd * bh * bw);
  for (const [k, [z0, y0, x0]] of starts.entries()) {
    for (let d = 0; d < D; d++) {
      const bz = z0 + d - box.z[0];
      if (bz < 0 || bz >= bd) continue;
      for (let h = 0; h < H; h++) {
        const by = y0 + h - box.y[0];
        if (by < 0 || by >= bh) continue;
        for (let w = 0; w < W; w++) {
          const bx = x0 + w - box.x[0];
          if (bx < 0 || bx >= bw) continue;
          const voxel = (bz * bh + by) * bw + bx;
          const from = k * perTile + ((d * H + h) * W + w) * channels;
          for (let c = 0; c < channels; c++) sums[voxel * channels + c] += probabilities[from + c]!;
          covered[voxel]!++;
        }
      }
    }
  }
  for (let voxel = 0; voxel < covered.length; voxel++) {
    const n = covered[voxel]!;
    if (n === 0) {
      const bx = voxel % bw, by = Math.floor(voxel / bw) % bh, bz = Math.floor(voxel / (bw * bh));
      throw new Error(`stitchTiles: box voxel (z ${box.z[0] + bz}, y ${box.y[0] + by}, x ${box.x[0] + bx}) is in none of the ${starts.length} tiles`);
    }
    if (n > 1) for (let c = 0; c < channels; c++) sums[voxel * channels + c]! /= n;
  }
  return sums;
}

/**
 * Back to the full volume: a class map of the box [boxD][boxH][boxW] → classes mapped to dataset values via
 * `inverse` → uint8 [Z][Y][X], zero outside the box.
 */
export function uncropBox(classes: Uint8Array, box: BrainBox, shape: [number, number, number], inverse: number[]): Uint8Array {
  const [X, Y, Z] = shape;
  const bd = box.z[1] - box.z[0];
  const bh = box.y[1] - box.y[0];
  const bw = box.x[1] - box.x[0];
  if (classes.length !== bd * bh * bw) throw new Error(`uncropBox: got ${classes.length} class values, a ${bd}x${bh}x${bw} box needs ${bd * bh * bw}`);
  const out = new Uint8Array(X * Y * Z);
  for (let bz = 0; bz < bd; bz++) {
    for (let by = 0; by < bh; by++) {
      const row = ((box.z[0] + bz) * Y + box.y[0] + by) * X + box.x[0];
      for (let bx = 0; bx < bw; bx++) {
        const cls = classes[(bz * bh + by) * bw + bx]!;
        const value = inverse[cls];
        if (value === undefined) throw new Error(`uncropBox: class ${cls} has no dataset value in the label map`);
        out[row + bx] = value;
      }
    }
  }
  return out;
}

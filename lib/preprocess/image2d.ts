// 2D preprocessing shared by preprocess.2d (training tensors) and the Carvana adapter (prediction): decode +
// bilinear resize of the photo, nearest resize of the mask to 0/1, per-channel normalisation, and the
// transform.json that records all of it. Being one code path is what makes prediction see exactly the
// tensors training saw.
import type { JsonObject } from '../../engine/stage.js';
import { decodeMask, decodeRgb, type ImageSource, type RawImage, type Size2d } from '../image/index.js';

export type NormalizeMode = 'imagenet' | 'dataset' | 'none';

/** ImageNet statistics in [0, 1] units (for pretrained encoders). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export interface Transform2d {
  dataset: 'carvana';
  /** Model input [H, W]. */
  size: Size2d;
  channels: 3;
  /** Photo: bilinear; mask: nearest, then car (255) → 1. */
  resize: { image: 'linear'; mask: 'nearest' };
  /** x = (pixel / 255 - mean[c]) / std[c]. */
  normalize: { mode: NormalizeMode; mean: number[]; std: number[] };
}

/** Reads transform.json content back, saying which field is wrong. */
export function parseTransform2d(value: JsonObject | unknown, where: string): Transform2d {
  const t = value as Partial<Transform2d>;
  const bad = (what: string): never => {
    throw new Error(`${where}: ${what}; re-run preprocess.2d to write a valid transform.json`);
  };
  if (t === null || typeof t !== 'object') bad('not an object');
  if (t.dataset !== 'carvana') bad(`dataset is ${JSON.stringify(t.dataset)}, expected "carvana"`);
  if (!Array.isArray(t.size) || t.size.length !== 2 || t.size.some((d) => !Number.isInteger(d) || d < 1)) bad('size must be [height, width] in pixels');
  if (t.channels !== 3) bad('channels must be 3');
  const n = t.normalize;
  if (n === undefined || !Array.isArray(n.mean) || !Array.isArray(n.std) || n.mean.length !== 3 || n.std.length !== 3) bad('normalize must hold 3 means and 3 stds');
  if (n!.std.some((s) => !(s > 0))) bad('normalize.std values must be > 0');
  return { dataset: 'carvana', size: [t.size![0]!, t.size![1]!], channels: 3, resize: { image: 'linear', mask: 'nearest' }, normalize: { mode: n!.mode ?? 'dataset', mean: [...n!.mean], std: [...n!.std] } };
}

/** Decodes a photo (JPEG/PNG bytes or file) straight to the model size, 8-bit RGB. */
export async function resizePhoto(source: ImageSource, size: Size2d, label?: string): Promise<RawImage> {
  return decodeRgb(source, { size, kernel: 'linear', label });
}

/** Decodes a mask to the model size (nearest) as 0/1 class indices. */
export async function resizeMask(source: ImageSource, size: Size2d, label?: string): Promise<Uint8Array> {
  const { mask } = await decodeMask(source, { size, label });
  const out = new Uint8Array(mask.data.length);
  for (let i = 0; i < out.length; i++) out[i] = mask.data[i] === 255 ? 1 : 0;
  return out;
}

/** 8-bit interleaved RGB → float32 [H, W, 3] normalised per channel. */
export function normalizePixels(rgb: Uint8Array, normalize: { mean: number[]; std: number[] }): Float32Array {
  const out = new Float32Array(rgb.length);
  const scale = normalize.std.map((s) => 1 / (255 * s));
  const offset = normalize.mean.map((m, c) => m / normalize.std[c]!);
  for (let i = 0; i < rgb.length; i += 3) {
    out[i] = rgb[i]! * scale[0]! - offset[0]!;
    out[i + 1] = rgb[i + 1]! * scale[1]! - offset[1]!;
    out[i + 2] = rgb[i + 2]! * scale[2]! - offset[2]!;
  }
  return out;
}

/** The model input for one photo, exactly as preprocess.2d writes it. */
export async function preparePhoto(source: ImageSource, transform: Transform2d, label?: string): Promise<Float32Array> {
  const rgb = await resizePhoto(source, transform.size, label);
  return normalizePixels(rgb.data, transform.normalize);
}

/** Per-channel sums over 8-bit RGB pictures, in [0, 1] units; combine, then read mean/std. */
export class ChannelStats {
  readonly sum = [0, 0, 0];
  readonly squares = [0, 0, 0];
  pixels = 0;

  add(rgb: Uint8Array): void {
    let r = 0, g = 0, b = 0, rr = 0, gg = 0, bb = 0;
    for (let i = 0; i < rgb.length; i += 3) {
      const vr = rgb[i]!, vg = rgb[i + 1]!, vb = rgb[i + 2]!;
      r += vr; g += vg; b += vb;
      rr += vr * vr; gg += vg * vg; bb += vb * vb;
    }
    const sums = [r, g, b];
    const squares = [rr, gg, bb];
    for (let c = 0; c < 3; c++) {
      this.sum[c]! += sums[c]! / 255;
      this.squares[c]! += squares[c]! / (255 * 255);
    }
    this.pixels += rgb.length / 3;
  }

  merge(other: ChannelStats): void {
    for (let c = 0; c < 3; c++) {
      this.sum[c]! += other.sum[c]!;
      this.squares[c]! += other.squares[c]!;
    }
    this.pixels += other.pixels;
  }

  mean(): number[] {
    return this.sum.map((s) => s / this.pixels);
  }

  /** Population std, floored so a constant channel does not divide by zero. */
  std(): number[] {
    const mean = this.mean();
    return this.squares.map((s, c) => Math.max(1e-3, Math.sqrt(Math.max(0, s / this.pixels - mean[c]! * mean[c]!))));
  }
}

/** mean/std for a normalise mode; `dataset` needs the train split's statistics. */
export function normalizeFor(mode: NormalizeMode, trainStats: ChannelStats | null): Transform2d['normalize'] {
  if (mode === 'imagenet') return { mode, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
  if (mode === 'none') return { mode, mean: [0, 0, 0], std: [1, 1, 1] };
  if (trainStats === null || trainStats.pixels === 0) throw new Error('normalize "dataset" needs at least one training image to measure mean/std');
  const round = (v: number): number => Math.round(v * 1e6) / 1e6;
  return { mode, mean: trainStats.mean().map(round), std: trainStats.std().map(round) };
}

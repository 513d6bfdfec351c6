// 2D preprocessing shared by preprocess.2d (training tensors) and the 2D dataset adapter (prediction): decode
// + bilinear resize of the picture to the declared channel count, nearest resize of the mask and stored value
// → class index through the label map, per-channel normalisation. Being one code path is what makes
// prediction see exactly the tensors training saw. transform.json's type and schema: lib/contracts/transform.ts.
import type { JsonObject } from '../../engine/stage.js';
import { decodeGray, decodeRgb, type ImageSource, type RawImage, type Size2d } from '../image/index.js';
import { classIndexTable, type LabelSpec } from '../contracts/labels.js';
import { transform2dContract, validateContract, type NormalizeMode, type Transform2d } from '../contracts/index.js';

export type { NormalizeMode, Transform2d };

/** ImageNet statistics in [0, 1] units (for pretrained encoders). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Reads transform.json content back through its contract, naming `where` and the wrong field. */
export function parseTransform2d(value: JsonObject | unknown, where: string): Transform2d {
  return validateContract(transform2dContract, value, where);
}

/** Decodes a picture (JPEG/PNG/... bytes or file) straight to the model size: 8-bit RGB, or grey for 1 channel. */
export async function resizePhoto(source: ImageSource, size: Size2d, label?: string, channels: 1 | 3 = 3): Promise<RawImage> {
  return channels === 1 ? decodeGray(source, { size, kernel: 'linear', label }) : decodeRgb(source, { size, kernel: 'linear', label });
}

/**
 * Decodes a mask of stored label values to the model size (nearest) as class indices through the label map.
 * Ignore values become IGNORE_INDEX, which the losses and the training Dice leave out (the tensor dataset's meta
 * says so: `ignore_index`), as evaluate does. A value outside the map is an error naming `label` (ingest skipped
 * such cases already).
 */
export async function resizeMask(source: ImageSource, size: Size2d, labels: LabelSpec, label = 'mask'): Promise<Uint8Array> {
  const gray = await decodeGray(source, { size, kernel: 'nearest', label });
  const table = classIndexTable(labels);
  const out = new Uint8Array(gray.data.length);
  for (let i = 0; i < out.length; i++) {
    const index = table[gray.data[i]!]!;
    if (index === -1) {
      const row = Math.floor(i / size[1]);
      throw new Error(`${label}: value ${gray.data[i]} at (row ${row}, col ${i % size[1]}) of the resized mask is not in the label map; re-run the ingest stage (it skips such cases)`);
    }
    out[i] = index;
  }
  return out;
}

/** Interleaved 8-bit pixels of `normalize.mean.length` channels → float32 [H, W, C] normalised per channel. */
export function normalizePixels(pixels: Uint8Array, normalize: { mean: number[]; std: number[] }): Float32Array {
  const channels = normalize.mean.length;
  const out = new Float32Array(pixels.length);
  const scale = normalize.std.map((s) => 1 / (255 * s));
  const offset = normalize.mean.map((m, c) => m / normalize.std[c]!);
  if (channels === 3) {
    for (let i = 0; i < pixels.length; i += 3) {
      out[i] = pixels[i]! * scale[0]! - offset[0]!;
      out[i + 1] = pixels[i + 1]! * scale[1]! - offset[1]!;
      out[i + 2] = pixels[i + 2]! * scale[2]! - offset[2]!;
    }
    return out;
  }
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i]! * scale[i % channels]! - offset[i % channels]!;
  return out;
}

/** The model input for one picture, exactly as preprocess.2d writes it. */
export async function preparePhoto(source: ImageSource, transform: Transform2d, label?: string): Promise<Float32Array> {
  const pixels = await resizePhoto(source, transform.size, label, transform.channels);
  return normalizePixels(pixels.data, transform.normalize);
}

/** Per-channel sums over 8-bit interleaved pictures, in [0, 1] units; combine, then read mean/std. */
export class ChannelStats {
  readonly sum: number[];
  readonly squares: number[];
  pixels = 0;

  constructor(readonly channels = 3) {
    this.sum = new Array<number>(channels).fill(0);
    this.squares = new Array<number>(channels).fill(0);
  }

  add(pixels: Uint8Array): void {
    const C = this.channels;
    const sums = new Array<number>(C).fill(0);
    const squares = new Array<number>(C).fill(0);
    if (C === 3) {
      let r = 0, g = 0, b = 0, rr = 0, gg = 0, bb = 0;
      for (let i = 0; i < pixels.length; i += 3) {
        const vr = pixels[i]!, vg = pixels[i + 1]!, vb = pixels[i + 2]!;
        r += vr; g += vg; b += vb;
        rr += vr * vr; gg += vg * vg; bb += vb * vb;
      }
      sums.splice(0, 3, r, g, b);
      squares.splice(0, 3, rr, gg, bb);
    } else {
      for (let i = 0; i < pixels.length; i++) {
        const v = pixels[i]!;
        sums[i % C]! += v;
        squares[i % C]! += v * v;
      }
    }
    for (let c = 0; c < C; c++) {
      this.sum[c]! += sums[c]! / 255;
      this.squares[c]! += squares[c]! / (255 * 255);
    }
    this.pixels += pixels.length / C;
  }

  merge(other: ChannelStats): void {
    for (let c = 0; c < this.channels; c++) {
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
export function normalizeFor(mode: NormalizeMode, trainStats: ChannelStats | null, channels = 3): Transform2d['normalize'] {
  if (mode === 'imagenet') {
    if (channels !== 3) throw new Error(`normalize "imagenet" needs 3 channels (RGB), the transform has ${channels}; use "dataset"`);
    return { mode, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
  }
  if (mode === 'none') return { mode, mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) };
  if (trainStats === null || trainStats.pixels === 0) throw new Error('normalize "dataset" needs at least one training image to measure mean/std');
  const round = (v: number): number => Math.round(v * 1e6) / 1e6;
  return { mode, mean: trainStats.mean().map(round), std: trainStats.std().map(round) };
}

// Small helpers over sharp shared by carvana.ingest, preprocess.2d, the Carvana adapter and the sample
// generator: every decode, resize and encode of a 2D picture goes through here, so preprocessing at training
// time and at prediction time is the same code path.
import fs from 'node:fs';
import sharp from 'sharp';
import { decodeBmp, isBmp } from './bmp.js';
import { decodePaletteIndices, isPalettePng } from './png-palette.js';

/** Interleaved 8-bit pixels, row-major. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** What a header read (no pixel decode) tells about a picture. */
export interface ImageInfo {
  format: string;
  width: number;
  height: number;
  channels: number;
  isPalette: boolean;
}

/** How to interpolate when resizing: `linear` for photos, `nearest` for label maps. */
export type ResizeKernel = 'linear' | 'nearest';

export type ImageSource = Uint8Array | string;

/** A decode/encode failure, carrying which file (or buffer label) it was and what sharp said. */
export class ImageError extends Error {
  constructor(
    readonly source: string,
    readonly detail: string,
  ) {
    super(`${source}: ${detail}`);
    this.name = 'ImageError';
  }
}

function describe(source: ImageSource, label?: string): string {
  if (label !== undefined) return label;
  return typeof source === 'string' ? source : `<${source.byteLength}-byte buffer>`;
}

function open(source: ImageSource, label?: string): sharp.Sharp {
  const bytes = typeof source === 'string' && /\.bmp$/i.test(source) ? fs.readFileSync(source) : source;
  // libvips has no BMP loader: such files are decoded here and handed over as raw pixels.
  if (typeof bytes !== 'string' && isBmp(bytes)) {
    const image = decodeBmp(bytes, describe(source, label));
    return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 3 } });
  }
  // failOn 'warning' makes libvips reject a truncated JPEG instead of returning half a grey picture.
  return sharp(bytes, { failOn: 'warning', limitInputPixels: 1 << 28 });
}

function bmpSource(source: ImageSource): boolean {
  return typeof source === 'string' ? /\.bmp$/i.test(source) : isBmp(source);
}

async function raw(pipeline: sharp.Sharp, source: ImageSource, label?: string): Promise<RawImage> {
  try {
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: info.channels,
    };
  } catch (error) {
    throw new ImageError(describe(source, label), `cannot decode image (${(error as Error).message})`);
  }
}

/** Reads the header only: format, size, channel count and whether it is a palette image. */
export async function readImageInfo(source: ImageSource, label?: string): Promise<ImageInfo> {
  try {
    const meta = await open(source, label).metadata();
    if (meta.width === undefined || meta.height === undefined || meta.format === undefined) {
      throw new Error('no width/height/format in header');
    }
    return {
      format: bmpSource(source) ? 'bmp' : meta.format,
      width: meta.width,
      height: meta.height,
      channels: meta.channels ?? 0,
      isPalette: meta.isPalette === true,
    };
  } catch (error) {
    throw new ImageError(describe(source, label), `cannot read image header (${(error as Error).message})`);
  }
}

/** Size arguments: `[height, width]`, the order preprocess params use. */
export type Size2d = [number, number];

function resized(pipeline: sharp.Sharp, size: Size2d | null, kernel: ResizeKernel): sharp.Sharp {
  if (size === null) return pipeline;
  return pipeline.resize(size[1], size[0], { fit: 'fill', kernel });
}

/**
 * Decodes to 3-channel sRGB (alpha dropped, gray expanded), optionally resized to `size` ([H, W]).
 * Decoding and resizing happen in one libvips pipeline, which is much faster than two steps.
 */
export async function decodeRgb(
  source: ImageSource,
  options: { size?: Size2d | null; kernel?: ResizeKernel; label?: string } = {},
): Promise<RawImage> {
  const pipeline = resized(open(source, options.label).removeAlpha().toColourspace('srgb'), options.size ?? null, options.kernel ?? 'linear');
  const image = await raw(pipeline, source, options.label);
  if (image.channels !== 3) throw new ImageError(describe(source, options.label), `expected 3 channels after decode, got ${image.channels}`);
  return image;
}

/**
 * Decodes to one 8-bit gray channel. Palette images (Kaggle's GIF masks, indices 0/1 with a black/white
 * palette) are expanded through their palette first, so index 1 becomes 255.
 */
export async function decodeGray(
  source: ImageSource,
  options: { size?: Size2d | null; kernel?: ResizeKernel; label?: string } = {},
): Promise<RawImage> {
  const pipeline = resized(open(source, options.label).removeAlpha().greyscale(), options.size ?? null, options.kernel ?? 'nearest');
  const image = await raw(pipeline, source, options.label);
  if (image.channels !== 1) throw new ImageError(describe(source, options.label), `expected 1 channel after decode, got ${image.channels}`);
  return image;
}

/** Resizes raw pixels already in memory to `size` ([H, W]). */
export async function resizeRaw(image: RawImage, size: Size2d, kernel: ResizeKernel): Promise<RawImage> {
  let pipeline = fromRaw(image).resize(size[1], size[0], { fit: 'fill', kernel });
  // libvips would hand a resized 1-channel picture back as sRGB; keep it gray.
  if (image.channels === 1) pipeline = pipeline.toColourspace('b-w');
  const out = await raw(pipeline, image.data, `<raw ${image.width}x${image.height}x${image.channels}>`);
  if (out.channels !== image.channels) throw new Error(`resizeRaw: ${image.channels} channels in, ${out.channels} out`);
  return out;
}

function fromRaw(image: RawImage): sharp.Sharp {
  if (image.data.length !== image.width * image.height * image.channels) {
    throw new Error(`raw image of ${image.width}x${image.height}x${image.channels} needs ${image.width * image.height * image.channels} bytes, got ${image.data.length}`);
  }
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 2 | 3 | 4 } });
}

/** Lossless PNG (1 channel stays 1-channel gray, 3 stays RGB). */
export async function encodePng(image: RawImage): Promise<Buffer> {
  const pipeline = image.channels === 1 ? fromRaw(image).toColourspace('b-w') : fromRaw(image);
  return pipeline.png({ compressionLevel: 9, adaptiveFiltering: false }).toBuffer();
}

/** Baseline JPEG (no chroma subsampling tricks beyond libjpeg's default 4:2:0). */
export async function encodeJpeg(image: RawImage, quality = 90): Promise<Buffer> {
  return fromRaw(image).jpeg({ quality, mozjpeg: false }).toBuffer();
}

/** A 1-channel 0/255 picture as GIF: sharp writes it as a palette GIF, the way Kaggle's masks are stored. */
export async function encodeGif(image: RawImage): Promise<Buffer> {
  return fromRaw(image).gif({ colours: 2, dither: 0 }).toBuffer();
}

/**
 * A grey mask value is foreground when it is above this: the one threshold of JPEG-saved masks at ingest, in
 * records and of upsampled predictions.
 */
export const MASK_THRESHOLD = 127;

/** 0/255 binary from any gray values: > `threshold` is foreground. Returns how many pixels were neither 0 nor 255. */
export function binarize(gray: Uint8Array, threshold = MASK_THRESHOLD): { mask: Uint8Array; nonBinary: number } {
  const mask = new Uint8Array(gray.length);
  let nonBinary = 0;
  for (let i = 0; i < gray.length; i++) {
    const value = gray[i]!;
    if (value !== 0 && value !== 255) nonBinary++;
    mask[i] = value > threshold ? 255 : 0;
  }
  return { mask, nonBinary };
}

/** A mask decoded to 0/255 plus what was found in the file, for ingest's report and warnings. */
export interface DecodedMask {
  mask: RawImage;
  /** Count of each gray value in the file as decoded (palette expanded), before normalisation. */
  histogram: number[];
  /** Pixels that were neither background nor the car value (e.g. JPEG ringing): thresholded. */
  nonBinary: number;
  /** The rule used: `two-level` (exactly 0 and one other value, e.g. 0/1 index masks) or `threshold` (> MASK_THRESHOLD). */
  rule: 'two-level' | 'threshold';
}

/**
 * Decodes a GIF/PNG/JPEG mask to 1-channel 0/255. A mask holding exactly 0 and one other value (0/255,
 * or 0/1 index masks) maps that value to 255; anything else (JPEG-saved masks) is thresholded (> MASK_THRESHOLD).
 */
export async function decodeMask(source: ImageSource, options: { size?: Size2d | null; label?: string } = {}): Promise<DecodedMask> {
  const gray = await decodeGray(source, { size: options.size ?? null, kernel: 'nearest', label: options.label });
  const histogram = new Array<number>(256).fill(0);
  for (let i = 0; i < gray.data.length; i++) histogram[gray.data[i]!]!++;
  const present = histogram.flatMap((count, value) => (count > 0 && value > 0 ? [value] : []));
  if (present.length <= 1) {
    const data = new Uint8Array(gray.data.length);
    for (let i = 0; i < data.length; i++) data[i] = gray.data[i]! > 0 ? 255 : 0;
    return { mask: { ...gray, data }, histogram, nonBinary: 0, rule: 'two-level' };
  }
  const { mask, nonBinary } = binarize(gray.data);
  return { mask: { ...gray, data: mask }, histogram, nonBinary, rule: 'threshold' };
}

/**
 * A label image's stored values, one byte per pixel: a palette PNG gives its palette indices (VOC-style
 * masks store the class as the index), anything else its grey value (palette GIFs through their colours, as
 * Kaggle's black/white Carvana masks need).
 */
export async function decodeLabelImage(source: ImageSource, options: { label?: string } = {}): Promise<RawImage> {
  const bytes = typeof source === 'string' ? await fs.promises.readFile(source).catch((error: Error) => {
    throw new ImageError(source, `cannot read the file (${error.message})`);
  }) : source;
  if (isPalettePng(bytes)) {
    try {
      return decodePaletteIndices(bytes, describe(source, options.label));
    } catch (error) {
      throw new ImageError(describe(source, options.label), (error as Error).message.replace(`${describe(source, options.label)}: `, ''));
    }
  }
  return decodeGray(bytes, { label: options.label ?? describe(source) });
}

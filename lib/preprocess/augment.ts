// Seeded data augmentation, applied by train to each batch at training time, in place on the typed arrays.
// Every sample draws exactly DRAWS_PER_SAMPLE numbers from the Rng whichever transforms are enabled or fire,
// so the Rng state train checkpoints always corresponds to the same position in the data stream.
// Geometric transforms (scale-crop, flips, 90° turns) are composed into one source-coordinate mapping used
// for both x and y: x is sampled bilinearly, y by nearest neighbour, so y keeps exactly its label values.
import type { Rng } from '../rng.js';

export interface AugmentConfig {
  /** Mirror left-right with probability 1/2. */
  hflip: boolean;
  /** Mirror top-bottom with probability 1/2. */
  vflip: boolean;
  /** Turn by k·90°, k uniform in 0..3 (items that are not square only turn by 0° or 180°). */
  rot90: boolean;
  /** Largest additive shift, in units of the (normalised) input, drawn uniformly in [-b, b]; 0 disables. */
  brightness: number;
  /** Largest relative contrast change around each channel's mean: factor in [1-c, 1+c]; 0 disables. */
  contrast: number;
  /** Zoom factor range [min, max] (> 1 zooms in on a random window, < 1 zooms out with edge padding); null disables. */
  scale_crop: [number, number] | null;
}

export const DRAWS_PER_SAMPLE = 8;

export const noAugmentation: AugmentConfig = { hflip: false, vflip: false, rot90: false, brightness: 0, contrast: 0, scale_crop: null };

/** Checks a config (e.g. from hparams) and says which field is wrong. */
export function validateAugmentConfig(config: AugmentConfig): void {
  if (!(config.brightness >= 0)) throw new Error(`augment.brightness must be >= 0, got ${config.brightness}`);
  if (!(config.contrast >= 0 && config.contrast < 1)) throw new Error(`augment.contrast must be in [0, 1), got ${config.contrast}`);
  if (config.scale_crop !== null) {
    const [lo, hi] = config.scale_crop;
    if (!(lo > 0 && hi >= lo)) throw new Error(`augment.scale_crop must be [min, max] with 0 < min <= max, got [${lo}, ${hi}]`);
  }
}

/**
 * Augments `count` samples in place. x: float32 [count, ...shape]; y: uint8 [count, ...spatial, 1] (label
 * values). `shape` is one item's [H, W, C], or [D, H, W, C] for 3D patches: then the flips, turns and zoom act
 * in the axial (H, W) plane, identically on every slice of the item, and brightness/contrast on the whole item.
 */
export function augmentBatch(
  x: Float32Array,
  y: Uint8Array,
  count: number,
  shape: readonly number[],
  config: AugmentConfig,
  rng: Rng,
): void {
  if (shape.length !== 3 && shape.length !== 4) throw new Error(`augmentBatch: items must be [H, W, C] or [D, H, W, C], got [${shape.join(', ')}]`);
  const [height, width, channels] = shape.slice(-3) as [number, number, number];
  const planes = shape.length === 4 ? shape[0]! : 1;
  const pixels = height * width;
  const voxels = planes * pixels;
  const what = shape.join('x');
  if (x.length !== count * voxels * channels) throw new Error(`augmentBatch: x holds ${x.length} values, expected ${count}x${what}`);
  if (y.length !== count * voxels) throw new Error(`augmentBatch: y holds ${y.length} values, expected ${count}x${shape.slice(0, -1).join('x')}x1`);
  const xItem = new Float32Array(pixels * channels);
  const yItem = new Uint8Array(pixels);
  for (let n = 0; n < count; n++) {
    // Always the same draws, in the same order.
    const flipH = rng.next() < 0.5;
    const flipV = rng.next() < 0.5;
    const turnDraw = rng.int(4);
    const brightnessDraw = rng.uniform(-1, 1);
    const contrastDraw = rng.uniform(-1, 1);
    const scaleDraw = rng.next();
    const offsetYDraw = rng.next();
    const offsetXDraw = rng.next();

    const xs = x.subarray(n * voxels * channels, (n + 1) * voxels * channels);
    const ys = y.subarray(n * voxels, (n + 1) * voxels);
    let turns = config.rot90 ? turnDraw : 0;
    if (height !== width) turns &= 2;
    const hflip = config.hflip && flipH;
    const vflip = config.vflip && flipV;
    let scale = 1;
    if (config.scale_crop !== null) scale = config.scale_crop[0] + (config.scale_crop[1] - config.scale_crop[0]) * scaleDraw;
    if (hflip || vflip || turns !== 0 || scale !== 1) {
      // Window of the source seen by the output: size H/scale x W/scale at a random offset.
      const windowH = height / scale;
      const windowW = width / scale;
      const offsetY = (height - windowH) * offsetYDraw;
      const offsetX = (width - windowW) * offsetXDraw;
      for (let plane = 0; plane < planes; plane++) {
        const xPlane = xs.subarray(plane * pixels * channels, (plane + 1) * pixels * channels);
        const yPlane = ys.subarray(plane * pixels, (plane + 1) * pixels);
        xItem.set(xPlane);
        yItem.set(yPlane);
        for (let i = 0; i < height; i++) {
          for (let j = 0; j < width; j++) {
            // Output (i, j) → position (r, c) in the flipped/turned frame (which has the item's shape, as odd
            // turns only happen on square items), then → source coordinates through the zoom window.
            let r = i;
            let c = j;
            if (turns === 2) {
              r = height - 1 - r;
              c = width - 1 - c;
            } else if (turns !== 0) {
              // A quarter turn (square items only); three quarters is that plus a half turn.
              const previous = r;
              r = c;
              c = width - 1 - previous;
              if (turns === 3) {
                r = height - 1 - r;
                c = width - 1 - c;
              }
            }
            if (vflip) r = height - 1 - r;
            if (hflip) c = width - 1 - c;
            const sy = offsetY + (r + 0.5) / scale - 0.5;
            const sx = offsetX + (c + 0.5) / scale - 0.5;
            const out = i * width + j;
            // Nearest for labels.
            const ny = clampIndex(Math.round(sy), height);
            const nx = clampIndex(Math.round(sx), width);
            yPlane[out] = yItem[ny * width + nx]!;
            // Bilinear for inputs (exact copy when the coordinates are integers).
            const y0 = clampIndex(Math.floor(sy), height);
            const x0 = clampIndex(Math.floor(sx), width);
            const y1 = clampIndex(Math.floor(sy) + 1, height);
            const x1 = clampIndex(Math.floor(sx) + 1, width);
            const fy = sy - Math.floor(sy);
            const fx = sx - Math.floor(sx);
            const a = (y0 * width + x0) * channels;
            const b = (y0 * width + x1) * channels;
            const cc = (y1 * width + x0) * channels;
            const d = (y1 * width + x1) * channels;
            for (let k = 0; k < channels; k++) {
              const top = fx === 0 ? xItem[a + k]! : xItem[a + k]! + (xItem[b + k]! - xItem[a + k]!) * fx;
              const bottom = fx === 0 ? xItem[cc + k]! : xItem[cc + k]! + (xItem[d + k]! - xItem[cc + k]!) * fx;
              xPlane[out * channels + k] = fy === 0 ? top : top + (bottom - top) * fy;
            }
          }
        }
      }
    }
    const shift = config.brightness * brightnessDraw;
    const factor = 1 + config.contrast * contrastDraw;
    if (shift !== 0 || factor !== 1) {
      for (let k = 0; k < channels; k++) {
        let sum = 0;
        for (let p = 0; p < voxels; p++) sum += xs[p * channels + k]!;
        const mean = sum / voxels;
        for (let p = 0; p < voxels; p++) {
          const at = p * channels + k;
          xs[at] = mean + (xs[at]! - mean) * factor + shift;
        }
      }
    }
  }
}

function clampIndex(value: number, size: number): number {
  return value < 0 ? 0 : value >= size ? size - 1 : value;
}

// Small synthetic segmentation data for the training tests: bright rectangles on noise, the mask marks them.
// Multi-class: rectangles of class 1 and class 2 with different brightness.
import { Rng } from '../../lib/rng.js';
import type { TrainData } from '../../lib/train/loop.js';

export function syntheticData(count: number, size: number, channels: number, classes: number, seed: number): TrainData {
  const rng = new Rng(seed);
  const pixels = size * size;
  const x = new Float32Array(count * pixels * channels);
  const y = new Uint8Array(count * pixels);
  for (let n = 0; n < count; n++) {
    const shapes = classes === 1 ? 1 : classes - 1;
    for (let s = 0; s < shapes; s++) {
      const label = classes === 1 ? 1 : s + 1;
      const h = 3 + rng.int(size / 2);
      const w = 3 + rng.int(size / 2);
      const top = rng.int(size - h);
      const left = rng.int(size - w);
      for (let r = top; r < top + h; r++) for (let c = left; c < left + w; c++) y[n * pixels + r * size + c] = label;
    }
    for (let p = 0; p < pixels; p++) {
      const label = y[n * pixels + p]!;
      for (let ch = 0; ch < channels; ch++) {
        x[(n * pixels + p) * channels + ch] = label * (1 + ch * 0.5) - 0.5 + 0.3 * rng.normal();
      }
    }
  }
  return { x, y, count };
}

/** 3D items [size, size, size, channels] with one box per foreground class; labels [size, size, size]. */
export function syntheticVolumes(count: number, size: number, channels: number, classes: number, seed: number): TrainData {
  const rng = new Rng(seed);
  const voxels = size * size * size;
  const x = new Float32Array(count * voxels * channels);
  const y = new Uint8Array(count * voxels);
  for (let n = 0; n < count; n++) {
    const shapes = classes === 1 ? 1 : classes - 1;
    for (let s = 0; s < shapes; s++) {
      const label = classes === 1 ? 1 : s + 1;
      const extent = [0, 0, 0].map(() => 2 + rng.int(size / 2));
      const start = extent.map((e) => rng.int(size - e));
      for (let d = start[0]!; d < start[0]! + extent[0]!; d++) {
        for (let r = start[1]!; r < start[1]! + extent[1]!; r++) {
          for (let c = start[2]!; c < start[2]! + extent[2]!; c++) y[n * voxels + (d * size + r) * size + c] = label;
        }
      }
    }
    for (let v = 0; v < voxels; v++) {
      const label = y[n * voxels + v]!;
      for (let ch = 0; ch < channels; ch++) x[(n * voxels + v) * channels + ch] = label * (1 + ch * 0.5) - 0.5 + 0.3 * rng.normal();
    }
  }
  return { x, y, count };
}

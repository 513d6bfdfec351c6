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

// Evaluation-side timings on BraTS-sized volumes (240x240x155): the distance transform, HD95 of a whole
// tumour and of a small enhancing region, all metrics of one case, and one Carvana-sized panel.
import { binaryMetrics, hd95, squaredDistanceTransform } from '../lib/metrics/index.js';
import { coloursFor, renderPanel } from '../lib/plot/index.js';
import { CARVANA_LABELS } from '../lib/datasets/carvana/ingest.js';

const CARVANA_COLOURS = coloursFor(CARVANA_LABELS, { 255: [0, 255, 0] });

const shape = [155, 240, 240];
const [Z, Y, X] = shape as [number, number, number];

function ball(cz: number, cy: number, cx: number, r: number): Uint8Array {
  const mask = new Uint8Array(Z * Y * X);
  for (let z = 0; z < Z; z++) for (let y = 0; y < Y; y++) for (let x = 0; x < X; x++) {
    if ((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 < r * r) mask[(z * Y + y) * X + x] = 1;
  }
  return mask;
}

function time(label: string, runs: number, fn: () => unknown): [string, string] {
  fn();
  const start = performance.now();
  for (let i = 0; i < runs; i++) fn();
  return [label, `${((performance.now() - start) / runs).toFixed(1)} ms`];
}

async function main(): Promise<void> {
  const rows: Array<[string, string]> = [];
  const big = ball(77, 120, 120, 40);
  const bigShifted = ball(78, 122, 124, 38);
  const small = ball(70, 100, 100, 6);
  const smallShifted = ball(71, 101, 99, 5);
  const seed = new Uint8Array(Z * Y * X);
  seed[(77 * Y + 120) * X + 120] = 1;
  rows.push(time('EDT full 240x240x155 volume (1 feature voxel)', 3, () => squaredDistanceTransform(seed, shape, [1, 1, 1])));
  rows.push(time('HD95 whole-tumour-sized balls (r 40 vs 38)', 3, () => hd95(big, bigShifted, shape, [1, 1, 1])));
  rows.push(time('HD95 small region (r 6 vs 5), cropped to its box', 5, () => hd95(small, smallShifted, shape, [1, 1, 1])));
  rows.push(time('all metrics, one region, 240x240x155', 3, () => binaryMetrics(big, bigShifted, shape, [1, 1, 1])));
  const w = 1918;
  const h = 1280;
  const background = { data: new Uint8Array(w * h * 3).fill(90), width: w, height: h };
  const mask = new Uint8Array(w * h);
  mask.fill(255, (w * h) / 4, (w * h) / 2);
  const start = performance.now();
  for (let i = 0; i < 3; i++) await renderPanel({ background, label: mask, prediction: mask, colours: CARVANA_COLOURS });
  rows.push(['Carvana panel 1918x1280 → 3 tiles of 512 px, PNG', `${((performance.now() - start) / 3).toFixed(1)} ms`]);
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log(`| ${'what'.padEnd(width)} | time per call |`);
  console.log(`|${'-'.repeat(width + 2)}|---------------|`);
  for (const [label, value] of rows) console.log(`| ${label.padEnd(width)} | ${value.padStart(13)} |`);
}

await main();

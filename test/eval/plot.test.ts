import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import {
  coloursFor, LEGEND_HEIGHT, PANEL_GAP, lineChartSvg, niceTicks, overlay, renderPanel,
  sliceWithMostForeground, writeLineChart,
} from '../../lib/plot/index.js';
import { makeTempDir, repoRoot } from '../helpers/paths.js';
import { bratsKind } from '../../lib/datasets/brats/index.js';
import { carvanaKind } from '../../lib/datasets/carvana/index.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';
import { BRATS_REGIONS } from '../../lib/datasets/brats/ingest.js';
import { labelSpecFromParams } from '../../lib/contracts/labels.js';

const CARVANA_COLOURS = coloursFor(CARVANA_LABELS, carvanaKind.colours);
const BRATS_COLOURS = coloursFor(
  labelSpecFromParams({ labels: { 0: 'background', 1: 'necrotic core', 2: 'edema', 4: 'enhancing' }, regions: BRATS_REGIONS }, 'test'),
  bratsKind.colours,
);

async function pixelAt(png: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return Array.from(data.subarray(i, i + 3));
}

test('nice ticks cover the range with round steps', () => {
  // range 0.66 over ~5 intervals = 0.132 → nice step 0.1
  assert.deepEqual(niceTicks(0.31, 0.97), [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
  assert.deepEqual(niceTicks(0, 2.6), [0, 0.5, 1, 1.5, 2, 2.5, 3]);
  assert.deepEqual(niceTicks(1, 5), [1, 2, 3, 4, 5]);
  assert.equal(niceTicks(2, 2).length > 1, true);
});

test('a line chart renders to PNG and SVG with its series drawn in their colours', async () => {
  const dir = makeTempDir('flow-plot-');
  const { png, svg } = await writeLineChart({
    title: 'loss', xLabel: 'epoch', yLabel: 'loss', width: 400, height: 300,
    series: [
      { name: 'train', x: [1, 2, 3], y: [1, 0.5, 0.25], colour: '#ff0000' },
      { name: 'val', x: [1, 2, 3], y: [1.2, NaN, 0.5], colour: '#0000ff', dashed: true },
    ],
  }, path.join(dir, 'loss'));
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [400, 300]);
  const text = fs.readFileSync(svg, 'utf8');
  assert.match(text, /<path d="M[^"]+" fill="none" stroke="#0000ff"/);
  // The NaN breaks the val line into two subpaths (two M commands).
  assert.equal((text.match(/d="[^"]*"[^>]*stroke="#0000ff"/)![0].match(/M/g) ?? []).length, 2);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  let red = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i]! > 200 && data[i + 1]! < 60 && data[i + 2]! < 60) red++;
  assert.ok(red > 50, `expected the red train line in the PNG, found ${red} red pixels`);
});

test('chart rendering does not fail when no font is installed', () => {
  const dir = makeTempDir('flow-nofont-');
  fs.writeFileSync(path.join(dir, 'fonts.conf'), '<?xml version="1.0"?><fontconfig><dir>/nonexistent-fonts</dir><cachedir>' + dir + '</cachedir></fontconfig>');
  const script = path.join(dir, 'render.mjs');
  const svg = lineChartSvg({ title: 'no fonts', xLabel: 'x', yLabel: 'y', series: [{ name: 's', x: [0, 1], y: [0, 1] }] });
  fs.writeFileSync(path.join(dir, 'chart.svg'), svg);
  fs.writeFileSync(script, `import sharp from ${JSON.stringify(path.join(repoRoot, 'node_modules', 'sharp', 'lib', 'index.js'))};
const png = await sharp(${JSON.stringify(path.join(dir, 'chart.svg'))}).png().toBuffer();
const meta = await sharp(png).metadata();
console.log(meta.width + 'x' + meta.height);`);
  const result = spawnSync(process.execPath, [script], {
    env: { ...process.env, FONTCONFIG_FILE: path.join(dir, 'fonts.conf'), FONTCONFIG_PATH: dir },
    encoding: 'utf8', timeout: 20000,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /640x400/);
});

test('a panel is input | label | prediction with class colours where the classes are', async () => {
  const width = 40;
  const height = 30;
  const background = { data: new Uint8Array(width * height * 3).fill(100), width, height };
  const label = new Uint8Array(width * height);
  const prediction = new Uint8Array(width * height);
  // Label: enhancing (4) at (5,5), edema (2) at (20,10); prediction: core (1) at (30,20).
  label[5 * width + 5] = 4;
  label[10 * width + 20] = 2;
  prediction[20 * width + 30] = 1;
  const png = await renderPanel({ background, label, prediction, colours: BRATS_COLOURS });
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [width * 3 + PANEL_GAP * 2, height + LEGEND_HEIGHT]);
  const labelLeft = width + PANEL_GAP;
  const predLeft = 2 * (width + PANEL_GAP);
  assert.deepEqual(await pixelAt(png, 5, 5), [100, 100, 100], 'the input tile has no overlay');
  assert.deepEqual(await pixelAt(png, labelLeft + 5, 5), [178, 178, 50], 'enhancing is yellow, blended 50%');
  assert.deepEqual(await pixelAt(png, labelLeft + 20, 10), [50, 178, 50], 'edema is green');
  assert.deepEqual(await pixelAt(png, labelLeft + 30, 20), [100, 100, 100]);
  assert.deepEqual(await pixelAt(png, predLeft + 30, 20), [178, 50, 50], 'core is red');
  assert.deepEqual(await pixelAt(png, predLeft + 5, 5), [100, 100, 100]);
});

test('large tiles are scaled down and a missing label is shown as grey', async () => {
  const width = 300;
  const height = 200;
  const background = { data: new Uint8Array(width * height * 3), width, height };
  const prediction = new Uint8Array(width * height).fill(255);
  const png = await renderPanel({ background, label: null, prediction, colours: CARVANA_COLOURS, maxTileWidth: 150 });
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height], [150 * 3 + PANEL_GAP * 2, 100 + LEGEND_HEIGHT]);
  assert.deepEqual(await pixelAt(png, 150 + PANEL_GAP + 75, 50), [96, 96, 96]);
  assert.deepEqual(await pixelAt(png, 2 * (150 + PANEL_GAP) + 75, 50), [0, 128, 0], 'car is green');
});

test('overlay refuses mismatched sizes; slice choice picks the slice with most foreground', () => {
  assert.throws(() => overlay({ data: new Uint8Array(12), width: 2, height: 2 }, new Uint8Array(3), CARVANA_COLOURS), /3 pixels/);
  const data = new Uint8Array(3 * 2 * 2);
  data[4] = 2; // slice 1: one voxel
  data[8] = 1; data[9] = 4; // slice 2: two voxels
  assert.equal(sliceWithMostForeground({ data, shape: [3, 2, 2], spacing: [1, 1, 1] }), 2);
});

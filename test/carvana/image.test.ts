// lib/image: channel counts survive encode/resize, palette GIF masks expand to 0/255, index masks (0/1)
// and JPEG-saved masks normalise to 0/255, truncated files fail naming the source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeGray, decodeMask, decodeRgb, encodeGif, encodePng, readImageInfo, resizeRaw, type RawImage } from '../../lib/image/index.js';
import { samplesDir } from '../helpers/paths.js';

function square(width: number, height: number, value: number): RawImage {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (x >= width / 4 && x < (3 * width) / 4 && y >= height / 4 && y < (3 * height) / 4) data[y * width + x] = value;
  return { data, width, height, channels: 1 };
}

test('1-channel pictures stay 1-channel through PNG encode and resize', async () => {
  const mask = square(20, 10, 255);
  const png = await encodePng(mask);
  assert.equal((await sharp(png).metadata()).channels, 1);
  const back = await decodeGray(png);
  assert.deepEqual(back.data, mask.data);
  const up = await resizeRaw(mask, [30, 40], 'nearest');
  assert.deepEqual([up.width, up.height, up.channels], [40, 30, 1]);
  assert.equal(up.data.filter((v) => v === 255).length, 20 * 15);
});

test('a palette GIF mask (the Kaggle format) decodes to exactly 0/255; a 0/1 PNG index mask becomes 0/255', async () => {
  const gif = await encodeGif(square(16, 16, 255));
  const info = await readImageInfo(gif);
  assert.equal(info.format, 'gif');
  assert.equal(info.isPalette, true);
  const decoded = await decodeMask(gif);
  assert.deepEqual(decoded.mask.data, square(16, 16, 255).data);
  assert.equal(decoded.rule, 'two-level');

  const indexMask = await decodeMask(await encodePng(square(16, 16, 1)));
  assert.deepEqual(indexMask.mask.data, square(16, 16, 255).data);
  assert.equal(indexMask.histogram[1], 64);
});

test('a JPEG-saved mask is thresholded and its stray values counted', async () => {
  // A disc: curved edges that JPEG cannot store without ringing.
  const disc = new Uint8Array(33 * 33).map((_, i) => (Math.hypot((i % 33) - 16, Math.floor(i / 33) - 16) < 10.5 ? 255 : 0));
  const jpeg = await sharp(disc, { raw: { width: 33, height: 33, channels: 1 } }).jpeg({ quality: 60 }).toBuffer();
  const decoded = await decodeMask(jpeg);
  assert.equal(decoded.rule, 'threshold');
  assert.ok(decoded.nonBinary > 0);
  assert.ok(decoded.mask.data.every((v) => v === 0 || v === 255));
  const agree = decoded.mask.data.filter((v, i) => v === disc[i]).length;
  assert.ok(agree >= disc.length - 12, `${agree} of ${disc.length} pixels agree`);
});

test('decodeRgb resizes in the same pipeline and a truncated JPEG fails naming the file', async () => {
  const file = path.join(samplesDir, 'carvana', 'train', fs.readdirSync(path.join(samplesDir, 'carvana', 'train')).sort()[0]!);
  const small = await decodeRgb(file, { size: [40, 60] });
  assert.deepEqual([small.width, small.height, small.channels, small.data.length], [60, 40, 3, 60 * 40 * 3]);
  const bytes = fs.readFileSync(file);
  await assert.rejects(decodeRgb(bytes.subarray(0, bytes.length - 200), { label: 'cut.jpg' }), /cut\.jpg: cannot decode image/);
});

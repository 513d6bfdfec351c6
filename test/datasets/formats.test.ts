// Image pairs of every supported picture format and pixel layout in one dataset, with different sizes: PNG
// RGBA, palette GIF, 24-bit BMP, grey TIFF, JPEG pictures; PNG and 8-bit BMP masks of class values {0, 1, 2}
// with an ignore value. Through ingest → tfrecord.write → preprocess.2d at 1 and 3 channels: every picture is
// converted to the declared channel count, masks become class indices, the ignore value IGNORE_INDEX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import stage, { type Preprocess2dParams } from '../../stages/preprocess-2d/index.js';
import { ingestImagePairs } from '../../lib/datasets/image-pairs/ingest.js';
import { convertIndexToShards } from '../../stages/tfrecord-write/convert.js';
import { loadTensorDataset } from '../../lib/tensors/dataset.js';
import { decodeBmp } from '../../lib/image/bmp.js';
import { decodeLabelImage } from '../../lib/image/index.js';
import { deflateSync } from 'node:zlib';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { IGNORE_INDEX } from '../../lib/contracts/labels.js';

/** A Windows 3 BMP: 24-bit BGR, or 8-bit with a grey palette (value = index), bottom-up rows padded to 4 bytes. */
function encodeBmp(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Buffer {
  const bits = channels === 3 ? 24 : 8;
  const stride = Math.ceil((width * bits) / 32) * 4;
  const paletteBytes = channels === 1 ? 256 * 4 : 0;
  const offset = 54 + paletteBytes;
  const out = Buffer.alloc(offset + stride * height);
  out.write('BM', 0, 'ascii');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(offset, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(bits, 28);
  for (let i = 0; i < paletteBytes / 4; i++) out.fill(i, 54 + i * 4, 54 + i * 4 + 3);
  for (let y = 0; y < height; y++) {
    const row = offset + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      if (channels === 1) out[row + x] = pixels[i]!;
      else [out[row + x * 3], out[row + x * 3 + 1], out[row + x * 3 + 2]] = [pixels[i + 2]!, pixels[i + 1]!, pixels[i]!];
    }
  }
  return out;
}

function gradient(width: number, height: number, channels: number): Uint8Array {
  return Uint8Array.from({ length: width * height * channels }, (_, i) => (Math.floor(i / channels) * 7 + (i % channels) * 60) % 256);
}

function maskValues(width: number, height: number): Uint8Array {
  return Uint8Array.from({ length: width * height }, (_, i) => (i % width < width / 3 ? 0 : i % width < (2 * width) / 3 ? 1 : i % 7 === 0 ? 9 : 2));
}

test('BMP reader: 24-bit and 8-bit grey-palette files decode to the pixels written', () => {
  const rgb = gradient(5, 3, 3);
  assert.deepEqual(decodeBmp(encodeBmp(rgb, 5, 3, 3), 'rgb.bmp'), { data: rgb, width: 5, height: 3, channels: 3 });
  const grey = gradient(6, 2, 1);
  assert.deepEqual(decodeBmp(encodeBmp(grey, 6, 2, 1), 'grey.bmp'), { data: grey, width: 6, height: 2, channels: 1 });
  assert.throws(() => decodeBmp(encodeBmp(rgb, 5, 3, 3).subarray(0, 60), 'cut.bmp'), /cut\.bmp: pixel data end at byte/);
});

test('every format and pixel layout through ingest, records and preprocess.2d at 3 and 1 channels', async () => {
  const root = makeTempDir();
  fs.mkdirSync(path.join(root, 'img'));
  fs.mkdirSync(path.join(root, 'lbl'));
  const cases: [string, number, number, (w: number, h: number) => Promise<Buffer>][] = [
    ['a.png', 20, 16, (w, h) => sharp(gradient(w, h, 4), { raw: { width: w, height: h, channels: 4 } }).png().toBuffer()],
    ['b.gif', 24, 16, (w, h) => sharp(gradient(w, h, 3), { raw: { width: w, height: h, channels: 3 } }).gif({ colours: 16 }).toBuffer()],
    ['c.bmp', 18, 14, async (w, h) => encodeBmp(gradient(w, h, 3), w, h, 3)],
    ['d.tiff', 16, 16, (w, h) => sharp(gradient(w, h, 1), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').tiff().toBuffer()],
    ['e.jpg', 22, 18, (w, h) => sharp(gradient(w, h, 3), { raw: { width: w, height: h, channels: 3 } }).jpeg().toBuffer()],
  ];
  for (const [name, w, h, encode] of cases) {
    fs.writeFileSync(path.join(root, 'img', name), await encode(w, h));
    const stem = name.replace(/\..*$/, '');
    const mask = maskValues(w, h);
    const file = path.join(root, 'lbl', `${stem}${stem === 'c' ? '.bmp' : '.png'}`);
    fs.writeFileSync(file, stem === 'c' ? encodeBmp(mask, w, h, 1) : await sharp(mask, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer());
  }
  const { index, report } = (await ingestImagePairs(root, {
    images: 'img/*.{png,gif,bmp,tiff,jpg}', masks: 'lbl/{stem}.{png,bmp}', labels: { 0: 'background', 1: 'one', 2: 'two' },
    background: null, ignore: [9], regions: null, group: null, split_file: null, strict: true,
  }))!;
  assert.equal(index.samples.length, 5);
  assert.deepEqual(Object.keys(report.imageFormats).sort(), ['bmp', 'gif', 'jpeg', 'png', 'tiff']);
  assert.equal(report.labelValues['9']!.name, 'ignore');
  const indexFile = path.join(root, 'index.json');
  fs.writeFileSync(indexFile, JSON.stringify(index));
  const shards = path.join(makeTempDir(), 'shards');
  await convertIndexToShards(indexFile, shards, { shard_size: 8, shard_bytes: null, compression: 'none' }, { warn: () => undefined });
  for (const channels of [3, 1] as const) {
    const run = stageContext<Preprocess2dParams>(stage, { size: [16, 16], val_fraction: 0.2, seed: 1, normalize: 'none', channels }, { data: shards });
    assert.equal((await stage.run(run.ctx)).status, 'done');
    const train = await loadTensorDataset(run.ctx.outs.train!);
    assert.deepEqual(train.spec.x.shape, [16, 16, channels]);
    assert.equal(train.spec.classes, 3, 'three classes: softmax over 3');
    assert.ok(train.y.every((v) => v <= 2 || v === IGNORE_INDEX), 'class indices, and IGNORE_INDEX where the ignore value 9 was');
    assert.ok(train.y.some((v) => v === IGNORE_INDEX), 'the ignore value 9 is kept apart for training to leave out');
    assert.equal(train.spec.meta.ignore_index, IGNORE_INDEX, 'spec.json tells train which index is ignored');
    const transform = JSON.parse(fs.readFileSync(run.ctx.outs.transform!, 'utf8')) as { channels: number; labels: { ignore: number[] } };
    assert.equal(transform.channels, channels);
    assert.deepEqual(transform.labels.ignore, [9]);
    const d = train.ids.indexOf('d');
    if (channels === 3 && d >= 0) {
      // The grey TIFF, replicated to RGB.
      const x = train.x.subarray(d * 16 * 16 * 3, (d + 1) * 16 * 16 * 3);
      for (let i = 0; i < x.length; i += 3) assert.ok(x[i] === x[i + 1] && x[i + 1] === x[i + 2]);
    }
  }
});

/** An indexed PNG (colour type 3) at `depth` bits with a VOC-like palette, every row with filter `filter`. */
function encodePalettePng(indices: Uint8Array, width: number, height: number, depth: 4 | 8, filter: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer): number => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = 3;
  const palette = Buffer.alloc(256 * 3);
  [[0, 0, 0], [128, 0, 0], [0, 128, 0]].forEach((rgb, i) => palette.set(rgb, i * 3));
  palette.set([224, 224, 192], 255 * 3);
  const stride = Math.ceil((width * depth) / 8);
  const raw = Buffer.alloc((stride + 1) * height);
  const rows = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = indices[y * width + x]!;
      if (depth === 8) rows[y * stride + x] = v;
      else rows[y * stride + (x >> 1)]! |= x % 2 === 0 ? v << 4 : v;
    }
  }
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const cur = rows[y * stride + x]!;
      const left = x > 0 ? rows[y * stride + x - 1]! : 0;
      const up = y > 0 ? rows[(y - 1) * stride + x]! : 0;
      raw[y * (stride + 1) + 1 + x] = (cur - (filter === 1 ? left : filter === 2 ? up : filter === 3 ? (left + up) >> 1 : 0)) & 0xff;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('PLTE', palette.subarray(0, depth === 8 ? 256 * 3 : 16 * 3)), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

test('palette PNG masks (VOC style) are read as their indices, not their colours', async () => {
  const width = 7, height = 5;
  for (const [depth, filter, values] of [[8, 2, [0, 1, 2, 255]], [8, 3, [0, 1, 2]], [4, 1, [0, 1, 2]]] as const) {
    const indices = Uint8Array.from({ length: width * height }, (_, i) => values[(i * 3 + Math.floor(i / width)) % values.length]!);
    const png = encodePalettePng(indices, width, height, depth, filter);
    assert.deepEqual(await decodeLabelImage(png), { data: indices, width, height, channels: 1 }, `depth ${depth} filter ${filter}`);
    assert.equal((await sharp(png).metadata()).isPalette, true, 'libvips agrees it is a palette PNG');
  }
});

// Generators of small 2D datasets in two public layouts, with the quirks real downloads have, for the tests of
// image-pairs.ingest and `flow init`:
// - ISIC 2018 Task 1 (challenge.isic-archive.com): ISIC2018_Task1-2_Training_Input/ISIC_<7 digits>.jpg and
//   ISIC2018_Task1_Training_GroundTruth/ISIC_<id>_segmentation.png (8-bit grey, 0 = skin, 255 = lesion);
//   pictures of different sizes in one set; ATTRIBUTION.txt and LICENSE.txt inside both folders.
// - Oxford-IIIT Pet (robots.ox.ac.uk/~vgg/data/pets): images/<Breed>_<n>.jpg, annotations/trimaps/<stem>.png
//   with 1 = pet, 2 = background, 3 = border; annotations/trainval.txt and test.txt ("<stem> <class> <species>
//   <breed id>", '#' comment lines in list.txt); macOS '._<stem>.png' resource forks among the trimaps; a few
//   greyscale JPEGs; a .mat file in images/.
// Deterministic (one seeded Rng). A bright, roughly elliptic blob on a textured background is the object.
//   node --import tsx scripts/make-samples/image-pairs.ts --layout isic|pet --out DIR
import path from 'node:path';
import sharp from 'sharp';
import { Rng } from '../../lib/rng.js';
import { encodeJpeg, encodePng } from '../../lib/image/index.js';
import { argValue, isMainModule, writeFileAtomic } from './common.js';

interface Picture {
  rgb: Uint8Array;
  /** 0 outside, 1 border ring, 2 inside. */
  regions: Uint8Array;
  width: number;
  height: number;
}

function drawCase(rng: Rng, width: number, height: number): Picture {
  const rgb = new Uint8Array(width * height * 3);
  const regions = new Uint8Array(width * height);
  const cx = width * (0.35 + 0.3 * rng.next());
  const cy = height * (0.35 + 0.3 * rng.next());
  const rx = width * (0.18 + 0.12 * rng.next());
  const ry = height * (0.18 + 0.12 * rng.next());
  const base = [150 + rng.int(60), 110 + rng.int(50), 90 + rng.int(50)];
  const object = [40 + rng.int(40), 25 + rng.int(30), 20 + rng.int(30)];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot((x - cx) / rx, (y - cy) / ry);
      const i = y * width + x;
      regions[i] = d < 0.85 ? 2 : d < 1 ? 1 : 0;
      const colour = d < 1 ? object : base;
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.max(0, Math.min(255, colour[c]! + Math.round((rng.next() - 0.5) * 30)));
    }
  }
  return { rgb, regions, width, height };
}

function grey(values: Uint8Array, width: number, height: number): Promise<Buffer> {
  return encodePng({ data: values, width, height, channels: 1 });
}

/** ISIC 2018 Task 1: `cases` lesions, sizes varying per picture. */
export async function makeIsicSample(out: string, cases = 12, seed = 2018): Promise<void> {
  const rng = new Rng(seed);
  const input = path.join(out, 'ISIC2018_Task1-2_Training_Input');
  const truth = path.join(out, 'ISIC2018_Task1_Training_GroundTruth');
  for (const dir of [input, truth]) {
    writeFileAtomic(path.join(dir, 'ATTRIBUTION.txt'), 'ISIC Archive contributors (generated stand-in)\n');
    writeFileAtomic(path.join(dir, 'LICENSE.txt'), 'CC-0 (generated stand-in)\n');
  }
  const sizes: [number, number][] = [[64, 48], [56, 56], [72, 54]];
  for (let k = 0; k < cases; k++) {
    const [width, height] = sizes[k % sizes.length]!;
    const id = `ISIC_${String(k * 3 + 1).padStart(7, '0')}`;
    const p = drawCase(rng, width, height);
    writeFileAtomic(path.join(input, `${id}.jpg`), await encodeJpeg({ data: p.rgb, width, height, channels: 3 }, 92));
    writeFileAtomic(path.join(truth, `${id}_segmentation.png`), await grey(p.regions.map((r) => (r > 0 ? 255 : 0)), width, height));
  }
}

/** Oxford-IIIT Pet: `perBreed` pets of two breeds, trimaps 1/2/3, an official test list. */
export async function makePetSample(out: string, perBreed = 6, seed = 2012): Promise<void> {
  const rng = new Rng(seed);
  const lines: string[] = [];
  const test: string[] = [];
  const trainval: string[] = [];
  let n = 0;
  for (const [breedId, breed] of ['Abyssinian', 'beagle'].entries()) {
    for (let k = 1; k <= perBreed; k++) {
      const stem = `${breed}_${k}`;
      const width = 60 + 4 * (k % 3);
      const height = 48;
      const p = drawCase(rng, width, height);
      // A few real pet photos are greyscale JPEGs.
      const picture = n % 5 === 2
        ? await sharp(Uint8Array.from({ length: width * height }, (_, i) => p.rgb[i * 3]!), { raw: { width, height, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer()
        : await encodeJpeg({ data: p.rgb, width, height, channels: 3 }, 90);
      writeFileAtomic(path.join(out, 'images', `${stem}.jpg`), picture);
      const trimap = p.regions.map((r) => (r === 2 ? 1 : r === 1 ? 3 : 2));
      writeFileAtomic(path.join(out, 'annotations', 'trimaps', `${stem}.png`), await grey(trimap, width, height));
      // macOS resource forks shipped in the tarball: not PNGs at all.
      if (k === 1) writeFileAtomic(path.join(out, 'annotations', 'trimaps', `._${stem}.png`), Buffer.from('Mac OS X        \u0000\u0005\u0016\u0007'));
      const line = `${stem} ${breedId + 1} ${breedId + 1} ${k}`;
      lines.push(line);
      (k > perBreed - 2 ? test : trainval).push(line);
      n++;
    }
  }
  writeFileAtomic(path.join(out, 'images', 'Abyssinian_101.mat'), Buffer.from('MATLAB 5.0 MAT-file (stand-in)'));
  writeFileAtomic(path.join(out, 'annotations', 'list.txt'), `#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n${lines.join('\n')}\n`);
  writeFileAtomic(path.join(out, 'annotations', 'trainval.txt'), `${trainval.join('\n')}\n`);
  writeFileAtomic(path.join(out, 'annotations', 'test.txt'), `${test.join('\n')}\n`);
}

if (isMainModule(import.meta.url)) {
  const out = argValue('out');
  const layout = argValue('layout');
  if (out === undefined || (layout !== 'isic' && layout !== 'pet')) {
    process.stderr.write('usage: image-pairs.ts --layout isic|pet --out DIR\n');
    process.exit(2);
  }
  await (layout === 'isic' ? makeIsicSample(out) : makePetSample(out));
  process.stdout.write(`wrote a ${layout} sample to ${out}\n`);
}

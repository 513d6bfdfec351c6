// JPEG decode + resize throughput (images/s) through the preprocess.2d path (lib/preprocess/image2d.ts:
// decode + bilinear resize to the model size + per-channel normalisation to float32) beside sharp alone
// (decode + resize to raw 8-bit) on the same files, in one run, one image at a time as preprocess streams.
// Two file sets: the shipped 240x160 sample, and Kaggle-sized 1918x1280 JPEGs made from it (in memory).
// Run: node --import tsx bench/image.ts   (or node dist/bench/image.js after the build)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { normalizePixels, resizePhoto } from '../lib/preprocess/image2d.js';
import { decodeRgb } from '../lib/image/index.js';

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = path.resolve(path.dirname(thisFile), path.basename(path.dirname(path.dirname(thisFile))) === 'dist' ? '../..' : '..');
const target: [number, number] = [128, 128];
const normalize = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

type Decode = (bytes: Uint8Array) => Promise<unknown>;

/**
 * Images/s of two decoders on the same files, measured in alternating rounds so that load from other
 * processes on the machine hits both alike; returns the median round rate of each.
 */
async function compare(files: Uint8Array[], rounds: number, ours: Decode, reference: Decode): Promise<[number, number]> {
  for (const bytes of files.slice(0, 4)) {
    await ours(bytes);
    await reference(bytes);
  }
  const rates: [number[], number[]] = [[], []];
  for (let round = 0; round < rounds; round++) {
    for (const [which, decode] of [ours, reference].entries()) {
      const start = performance.now();
      for (const bytes of files) await decode(bytes);
      rates[which]!.push(files.length / ((performance.now() - start) / 1000));
    }
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return [median(rates[0]), median(rates[1])];
}

async function main(): Promise<void> {
  const trainDir = path.join(repoRoot, 'data', 'samples', 'carvana', 'train');
  const small = fs.readdirSync(trainDir).sort().map((name) => new Uint8Array(fs.readFileSync(path.join(trainDir, name))));
  // Kaggle-sized photos: the first 12 sample photos upscaled to 1918x1280 and re-encoded (quality 90).
  const large: Uint8Array[] = [];
  {
    for (const bytes of small.slice(0, 12)) large.push(new Uint8Array(await sharp(bytes).resize(1918, 1280, { kernel: 'lanczos3' }).jpeg({ quality: 90 }).toBuffer()));
    const sets = [
      { name: `sample 240x160 (${small.length} files)`, files: small, rounds: 9 },
      { name: `Kaggle-size 1918x1280 (${large.length} files)`, files: large, rounds: 5 },
    ];
    const rows: string[][] = [];
    // No libvips operation cache: every round must really decode (the files repeat across rounds).
    sharp.cache(false);
    for (const set of sets) {
      const [preprocess, sharpAlone] = await compare(
        set.files,
        set.rounds,
        async (bytes) => normalizePixels((await resizePhoto(bytes, target)).data, normalize),
        (bytes) => sharp(bytes).resize(target[1], target[0], { fit: 'fill' }).raw().toBuffer(),
      );
      const [ingestDecode, sharpFull] = await compare(set.files, set.rounds, (bytes) => decodeRgb(bytes), (bytes) => sharp(bytes).raw().toBuffer());
      rows.push([set.name, `decode+resize to ${target[0]}x${target[1]}`, preprocess.toFixed(1), sharpAlone.toFixed(1), `${((100 * preprocess) / sharpAlone).toFixed(0)}%`]);
      rows.push([set.name, 'full decode (ingest)', ingestDecode.toFixed(1), sharpFull.toFixed(1), `${((100 * ingestDecode) / sharpFull).toFixed(0)}%`]);
    }
    const header = ['files', 'operation', 'flow path img/s', 'sharp alone img/s', 'ratio'];
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
    const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ');
    console.log(`JPEG decode + resize, one image at a time, median of alternating rounds (node ${process.version}, sharp ${sharp.versions.sharp}, ${os.cpus().length} CPUs)`);
    console.log(line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const row of rows) console.log(line(row));
  }
}

await main();

// patches3d end to end on the data side: the tiling of the brain box, preprocess.brats validation tiles, and
// the BraTS adapter's prepare (tiles) → restore (stitch, argmax, uncrop, 0/1/2/4) round trip on the shipped
// sample's real records.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import stage, { type PreprocessBratsParams } from '../../stages/preprocess-brats/index.js';
import type { BratsIndex } from '../../lib/datasets/brats/ingest.js';
import { readTensorDataset, readTensorSpec } from '../../lib/tensors/dataset.js';
import { readExamples } from '../../lib/tfrecord/spec.js';
import type { Feature } from '../../lib/tfrecord/example.js';
import { readNifti } from '../../lib/nifti/read.js';
import { bratsAdapter } from '../../lib/datasets/brats/index.js';
import type { PreparedCase } from '../../lib/datasets/dataset.js';
import { Rng } from '../../lib/rng.js';
import {
  BOX_TILING,
  brainBoundingBox,
  decodeBratsExample,
  stitchTiles,
  tilePatches,
  tileStarts,
  type BrainBox,
} from '../../lib/preprocess/brats.js';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { sampleRecords } from './records.js';
import type { JsonObject } from '../../engine/stage.js';

type Triple = [number, number, number];

// Every labelled sample patient (boxes 22..44 deep, 50..62 high, 46..56 wide; _0004_1 is the shallow one)
// and one Validation patient without seg.
const UNLABELLED = 'BraTS19_SYN_0101_1';
let recordsDir = '';
let index: BratsIndex;

const params = (over: Partial<PreprocessBratsParams> = {}): PreprocessBratsParams => ({
  mode: 'patches3d', size: [64, 64], patch: [32, 24, 24], patches_per_patient: 4, val_fraction: 0.9, seed: 42, tumour_fraction: 0.7,
  label_map: { '0': 0, '1': 1, '2': 2, '4': 3 }, ...over,
});

before(async () => {
  ({ index, recordsDir } = await sampleRecords((s) => s.label !== null || s.id === UNLABELLED));
});

async function runPreprocess(p: PreprocessBratsParams) {
  const run = stageContext(stage, p, { data: recordsDir });
  const outcome = await stage.run(run.ctx);
  assert.equal(outcome.status, 'done');
  return { outs: run.ctx.outs, printed: run.printed };
}

/** How many tiles hold each voxel of the box, [boxD][boxH][boxW]. */
function coverage(box: BrainBox, starts: Triple[], patch: Triple): Uint16Array {
  const bd = box.z[1] - box.z[0], bh = box.y[1] - box.y[0], bw = box.x[1] - box.x[0];
  const counts = new Uint16Array(bd * bh * bw);
  for (const [z0, y0, x0] of starts) {
    for (let z = Math.max(z0, box.z[0]); z < Math.min(z0 + patch[0], box.z[1]); z++) {
      for (let y = Math.max(y0, box.y[0]); y < Math.min(y0 + patch[1], box.y[1]); y++) {
        for (let x = Math.max(x0, box.x[0]); x < Math.min(x0 + patch[2], box.x[1]); x++) counts[((z - box.z[0]) * bh + y - box.y[0]) * bw + x - box.x[0]]!++;
      }
    }
  }
  return counts;
}

test('tileStarts / tilePatches: step by the patch, last tile ends at the box end, short axes centred', () => {
  assert.deepEqual(tileStarts(5, 43, 16), [5, 21, 27], 'last tile moved back to end at 43');
  assert.deepEqual(tileStarts(0, 32, 32), [0], 'exact fit: one tile');
  assert.deepEqual(tileStarts(0, 33, 32), [0, 1]);
  assert.deepEqual(tileStarts(0, 64, 16), [0, 16, 32, 48], 'a multiple of the patch: no overlap');
  assert.deepEqual(tileStarts(13, 35, 32), [8], '22 voxels centred in 32: 5 before, 5 after');
  assert.deepEqual(tileStarts(0, 3, 8), [-2], 'reaches outside the volume');

  // Properties over random boxes and patches.
  const rng = new Rng(7);
  for (let trial = 0; trial < 300; trial++) {
    const volume: Triple = [1 + rng.int(40), 1 + rng.int(40), 1 + rng.int(40)]; // [X, Y, Z]
    const span = (extent: number): [number, number] => {
      const lo = rng.int(extent);
      return [lo, lo + 1 + rng.int(extent - lo)];
    };
    const box: BrainBox = { x: span(volume[0]), y: span(volume[1]), z: span(volume[2]) };
    const patch: Triple = [1 + rng.int(20), 1 + rng.int(20), 1 + rng.int(20)];
    const starts = tilePatches(box, patch, volume);
    const where = `box ${JSON.stringify(box)} patch ${patch}`;
    assert.equal(new Set(starts.map((s) => s.join(','))).size, starts.length, `${where}: no tile twice`);
    const axes: [BrainBox['z'], number][] = [[box.z, patch[0]], [box.y, patch[1]], [box.x, patch[2]]];
    const perAxis = axes.map(([[lo, hi], size]) => Math.max(1, Math.ceil((hi - lo) / size)));
    assert.equal(starts.length, perAxis[0]! * perAxis[1]! * perAxis[2]!, `${where}: ceil(span / patch) tiles per axis`);
    for (const start of starts) {
      axes.forEach(([[lo, hi], size], axis) => {
        const s = start[axis]!;
        if (hi - lo > size) assert.ok(s >= lo && s + size <= hi, `${where}: tile ${start} inside the box on axis ${axis}`);
        else assert.ok(Math.abs((lo - s) - (s + size - hi)) <= 1, `${where}: tile ${start} centred on axis ${axis}`);
      });
    }
    assert.ok(coverage(box, starts, patch).every((n) => n >= 1), `${where}: every box voxel in a tile`);
  }

  assert.throws(() => tilePatches({ x: [0, 10], y: [0, 10], z: [5, 5] }, [4, 4, 4], [10, 10, 10]), /box z \[5, 5\) is empty/);
  assert.throws(() => tilePatches({ x: [0, 11], y: [0, 10], z: [0, 5] }, [4, 4, 4], [10, 10, 10]), /box x \[0, 11\) is empty or outside the volume's 0\.\.10/);
  assert.throws(() => tilePatches({ x: [0, 10], y: [0, 10], z: [0, 5] }, [4, 0, 4], [10, 10, 10]), /patch must be 3 positive integers/);
});

test('stitchTiles averages overlapping tiles before the argmax and refuses an uncovered voxel', () => {
  // A 1x1x3 box, tiles of 1x1x2 at x 0 and x 1: voxel x=1 is in both.
  const box: BrainBox = { x: [0, 3], y: [0, 1], z: [0, 1] };
  const starts: Triple[] = [[0, 0, 0], [0, 0, 1]];
  // Tile 0 says x=1 is class 1 (0.6 vs 0.4); tile 1 says class 0 strongly (0.9 vs 0.1): average 0.65 / 0.35.
  const probabilities = Float32Array.from([1, 0, 0.4, 0.6, 0.9, 0.1, 0, 1]);
  const stitched = stitchTiles(probabilities, 2, starts, [1, 1, 2], box);
  assert.deepEqual(Array.from(stitched, (v) => Math.round(v * 100) / 100), [1, 0, 0.65, 0.35, 0, 1]);
  assert.throws(() => stitchTiles(probabilities.subarray(0, 4), 2, [[0, 0, 0]], [1, 1, 2], box), /box voxel \(z 0, y 0, x 2\) is in none of the 1 tiles/);
  assert.throws(() => stitchTiles(probabilities, 2, [[0, 0, 0]], [1, 1, 2], box), /got 8 values, 1 tiles of 1x1x2x2 need 4/);
});

test('preprocess patches3d: validation = the tiles covering each validation brain box; training patches unchanged', async () => {
  const patch: Triple = [32, 24, 24];
  const { outs, printed } = await runPreprocess(params({ patch }));
  const split = JSON.parse(fs.readFileSync(outs.split!, 'utf8'));
  assert.equal(split.val.length, 7, 'val_fraction 0.9 of 8 labelled patients');
  assert.ok(split.val.includes('BraTS19_SYN_0004_1'), 'the shallow-box patient is validated (its z is shorter than the patch)');
  const transform = JSON.parse(fs.readFileSync(outs.transform!, 'utf8'));
  assert.deepEqual(transform.patch, patch);
  assert.equal(transform.tiling, BOX_TILING);

  const trainSpec = await readTensorSpec(outs.train!);
  assert.equal(trainSpec.count, split.train.length * 4, 'patches_per_patient per training patient');
  const valSpec = await readTensorSpec(outs.val!);
  assert.deepEqual(valSpec.x.shape, [...patch, 4]);
  assert.deepEqual(valSpec.y.shape, [...patch, 1]);

  const startsOf = new Map<string, Triple[]>();
  const ids: string[] = [];
  for await (const s of readTensorDataset(outs.val!)) {
    const patient = s.info.patient as string;
    assert.match(s.id, /^BraTS19_SYN_\d{4}_1:t\d{3}$/);
    ids.push(s.id);
    startsOf.set(patient, [...(startsOf.get(patient) ?? []), s.info.start as Triple]);
  }
  assert.deepEqual(ids.sort(), split.valIds);
  assert.deepEqual([...startsOf.keys()].sort(), split.val);
  let tiles = 0;
  let boxVoxels = 0;
  for await (const view of readExamples(recordsDir)) {
    const volume = decodeBratsExample(view.features);
    const starts = startsOf.get(volume.id);
    if (!starts) continue;
    const box = brainBoundingBox(volume)!;
    assert.deepEqual(starts, tilePatches(box, patch, volume.shape), `${volume.id}: the tiles of its brain box, in order`);
    const counts = coverage(box, starts, patch);
    assert.ok(counts.every((n) => n >= 1), `${volume.id}: every brain-box voxel validated`);
    tiles += starts.length;
    boxVoxels += counts.length;
  }
  assert.equal(tiles, valSpec.count);
  // 6 patients of 2x3x3 tiles and _0004_1 (22 deep: one z tile) of 1x3x2.
  assert.equal(tiles, 6 * 18 + 6);
  assert.ok(boxVoxels > 7 * 20 * 40 * 40);
  assert.ok(printed.some((line) => line.includes(`val: ${tiles} tiles`)), printed.join('\n'));
});

/** One-hot [tiles][D][H][W][4] from the class tiles the stage wrote for this patient. */
function oneHot(labelTiles: Uint8Array[], channels: number): Float32Array {
  const voxels = labelTiles[0]!.length;
  const out = new Float32Array(labelTiles.length * voxels * channels);
  labelTiles.forEach((tile, k) => tile.forEach((cls, v) => (out[(k * voxels + v) * channels + cls] = 1)));
  return out;
}

async function preparedCases(transform: JsonObject): Promise<PreparedCase[]> {
  const cases: PreparedCase[] = [];
  for await (const view of readExamples(recordsDir)) cases.push(await bratsAdapter.prepare(view.features, transform));
  return cases;
}

for (const [name, patch, tilesPerCase] of [
  ['mixed: stepped y/x tiles, z stepped or (for _0004_1) centred', [32, 24, 24], null],
  ['box smaller than the patch on every axis: one centred tile reaching outside the volume', [56, 72, 72], 1],
] as [string, Triple, number | null][]) {
  test(`adapter patches3d round trip (${name}): the stage's label tiles as one-hot probabilities restore the exact label volume`, async () => {
    const { outs } = await runPreprocess(params({ patch }));
    const transform = JSON.parse(fs.readFileSync(outs.transform!, 'utf8')) as JsonObject;
    const split = JSON.parse(fs.readFileSync(outs.split!, 'utf8'));
    const stageTiles = new Map<string, { x: Float32Array[]; y: Uint8Array[] }>();
    for await (const s of readTensorDataset(outs.val!)) {
      const entry = stageTiles.get(s.info.patient as string) ?? { x: [], y: [] };
      entry.x.push(s.x as Float32Array);
      entry.y.push(s.y as Uint8Array);
      stageTiles.set(s.info.patient as string, entry);
    }
    const per = patch[0] * patch[1] * patch[2];
    let restoredCases = 0;
    let enhancing = 0; // cases whose class 3 went back to label 4 (LGG patients have little or none)
    for (const prepared of await preparedCases(transform)) {
      assert.deepEqual(prepared.itemShape, [...patch, 4]);
      if (tilesPerCase !== null) assert.equal(prepared.count, tilesPerCase, `${prepared.id}: tiles`);
      const bg = await bratsAdapter.background(prepared, null);
      assert.deepEqual([bg.width, bg.height], [64, 64]);
      assert.ok(bg.data.some((v) => v > 200) && bg.data.some((v) => v === 0), `${prepared.id}: background shows a brain`);
      if (prepared.label === null) {
        assert.equal(prepared.id, UNLABELLED);
        // All background: the box restores to 0 everywhere.
        const background = new Float32Array(prepared.count * per * 4);
        for (let v = 0; v < prepared.count * per; v++) background[v * 4] = 1;
        const restored = await bratsAdapter.restore(background, 4, prepared, transform);
        assert.equal(restored.data.length, 64 * 64 * 48);
        assert.ok(restored.data.every((v) => v === 0));
        continue;
      }
      const fromStage = stageTiles.get(prepared.id);
      if (!fromStage) {
        assert.ok(split.train.includes(prepared.id), `${prepared.id} has no validation tiles, so it trains`);
        continue;
      }
      // prepare replays the stage tile for tile, to the bit.
      assert.equal(prepared.count, fromStage.x.length);
      for (let k = 0; k < prepared.count; k++) {
        assert.deepEqual(prepared.x.subarray(k * per * 4, (k + 1) * per * 4), fromStage.x[k], `${prepared.id} tile ${k}`);
      }
      const restored = await bratsAdapter.restore(oneHot(fromStage.y, 4), 4, prepared, transform);
      assert.deepEqual(restored.shape, prepared.label.shape);
      assert.deepEqual(restored.spacing, prepared.label.spacing);
      let differ = 0;
      for (let i = 0; i < restored.data.length; i++) if (restored.data[i] !== prepared.label.data[i]) differ++;
      assert.equal(differ, 0, `${prepared.id}: restored labels differ in ${differ} voxels`);
      if (restored.data.includes(4)) enhancing++;
      if (restoredCases === 0) {
        // Through write: the seg as the dataset shipped it, geometry included.
        const file = path.join(makeTempDir(), `${prepared.id}${bratsAdapter.extension}`);
        await bratsAdapter.write(restored, prepared, file);
        const back = await readNifti(file);
        const source = await readNifti(path.join(index.root, index.samples.find((s) => s.id === prepared.id)!.label!));
        assert.deepEqual(back.dims, source.dims);
        assert.deepEqual(back.data, source.data);
      }
      restoredCases++;
    }
    assert.equal(restoredCases, 7);
    assert.ok(enhancing >= 3, `${enhancing} cases with enhancing tumour (4)`);
  });
}

test('adapter patches3d: a transform that does not fit the case or the probabilities is a clear error', async () => {
  const { outs } = await runPreprocess(params({ val_fraction: 0.25 }));
  const transform = JSON.parse(fs.readFileSync(outs.transform!, 'utf8')) as JsonObject;
  let prepared: PreparedCase | undefined;
  let features: Record<string, Feature> | undefined;
  for await (const view of readExamples(recordsDir)) {
    features = view.features;
    prepared = await bratsAdapter.prepare(view.features, transform);
    break;
  }
  const id = prepared!.id;
  const probabilities = new Float32Array(prepared!.count * 32 * 24 * 24 * 4);
  const wider = { ...transform, patch: [32, 24, 32] };
  await assert.rejects(
    bratsAdapter.restore(probabilities, 4, prepared!, wider),
    new RegExp(`case ${id}: got ${probabilities.length} probabilities, ${prepared!.count} tiles of 32x24x32x4 \\(transform.json patch \\[32, 24, 32\\]\\) need ${prepared!.count * 32 * 24 * 32 * 4}`),
  );
  await assert.rejects(bratsAdapter.restore(probabilities.subarray(1), 4, prepared!, transform), new RegExp(`case ${id}: got ${probabilities.length - 1} probabilities`));
  // Same voxels per tile, other shape: the lengths agree but the case was tiled otherwise.
  await assert.rejects(bratsAdapter.restore(probabilities, 4, prepared!, { ...transform, patch: [24, 32, 24] }), new RegExp(`case ${id} was prepared with patch \\[32, 24, 24\\] but transform.json has \\[24, 32, 24\\]`));
  // More channels than the label map has classes: no dataset value for class 4.
  const fiveChannels = new Float32Array(prepared!.count * 32 * 24 * 24 * 5);
  for (let v = 0; v < fiveChannels.length / 5; v++) fiveChannels[v * 5 + 4] = 1;
  await assert.rejects(bratsAdapter.restore(fiveChannels, 5, prepared!, transform), new RegExp(`case ${id}: uncropBox: class 4 has no dataset value`));

  const { tiling: _tiling, ...untiled } = transform;
  await assert.rejects(bratsAdapter.prepare(features!, untiled), /tiling undefined is not "brain-box-grid"; re-run preprocess.brats/);
  await assert.rejects(bratsAdapter.prepare(features!, { ...transform, patch: [32, 24] }), /transform\.json: not a valid transform\.json \(preprocess\.brats\) \(patch: must NOT have fewer than 3 items\)/);
});

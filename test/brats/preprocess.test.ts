import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import stage, { type PreprocessBratsParams } from '../../stages/preprocess-brats/index.js';
import type { BratsIndex } from '../../lib/datasets/brats/ingest.js';
import { loadTensorDataset, readTensorDataset, readTensorSpec } from '../../lib/tensors/dataset.js';
import { readExamples } from '../../lib/tfrecord/spec.js';
import { getString } from '../../lib/tfrecord/example.js';
import { readNifti } from '../../lib/nifti/read.js';
import { bratsAdapter } from '../../lib/datasets/brats/index.js';
import { resizeBilinear, resizeNearest, zscoreBrain, brainBoundingBox, type BratsVolume } from '../../lib/preprocess/brats.js';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { sampleRecords } from './records.js';
import type { JsonObject } from '../../engine/stage.js';

const chosen = ['BraTS19_SYN_0001_1', 'BraTS19_SYN_0004_1', 'BraTS19_SYN_0005_1', 'BraTS19_SYN_0006_1', 'BraTS19_SYN_0101_1'];
let recordsDir = '';
let index: BratsIndex;

const params = (over: Partial<PreprocessBratsParams> = {}): PreprocessBratsParams => ({
  mode: 'slices2d', size: [64, 64], patch: [32, 32, 32], patches_per_patient: 8, val_fraction: 0.25, seed: 42, tumour_fraction: 0.7,
  label_map: { '0': 0, '1': 1, '2': 2, '4': 3 }, ...over,
});

before(async () => {
  ({ index, recordsDir } = await sampleRecords((s) => chosen.includes(s.id)));
});

async function runPreprocess(p: PreprocessBratsParams) {
  const run = stageContext(stage, p, { data: recordsDir });
  const outcome = await stage.run(run.ctx);
  assert.equal(outcome.status, 'done');
  return run.ctx.outs;
}

test('slices2d: shapes, classes 0..3 (4 → 3), split by patient, tumour share, determinism', async () => {
  const outs = await runPreprocess(params());
  const split = JSON.parse(fs.readFileSync(outs.split!, 'utf8'));
  assert.equal(split.train.length + split.val.length, 4, 'four labelled patients');
  assert.equal(split.val.length, 1);
  assert.deepEqual(split.unlabelled, ['BraTS19_SYN_0101_1']);
  const transform = JSON.parse(fs.readFileSync(outs.transform!, 'utf8'));
  assert.deepEqual(transform.size, [64, 64]);
  assert.deepEqual(transform.labelMap.train, { '0': 0, '1': 1, '2': 2, '4': 3 });

  const train = await loadTensorDataset(outs.train!);
  const spec = await readTensorSpec(outs.train!);
  assert.deepEqual(spec.x.shape, [64, 64, 4]);
  assert.deepEqual(spec.y.shape, [64, 64, 1]);
  assert.equal(spec.classes, 4);
  const seen = new Set<number>();
  let tumourSlices = 0;
  let total = 0;
  for await (const sample of readTensorDataset(outs.train!)) {
    total++;
    const patient = sample.id.split(':')[0]!;
    assert.ok(split.train.includes(patient), `${sample.id} is from a training patient`);
    let tumour = false;
    for (const v of sample.y) {
      seen.add(v);
      if (v !== 0) tumour = true;
    }
    if (tumour) tumourSlices++;
  }
  assert.ok(total > 20);
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3], 'enhancing tumour became class 3; no 4 left');
  const share = tumourSlices / total;
  assert.ok(share > 0.6 && share < 0.8, `tumour share ${share}`);
  assert.ok(train !== null);
  for await (const sample of readTensorDataset(outs.val!)) assert.ok(split.val.includes(sample.id.split(':')[0]), `${sample.id} is from a validation patient`);

  // Same seed → byte-identical datasets.
  const again = await runPreprocess(params());
  for (const name of fs.readdirSync(outs.train!)) {
    if (name === 'spec.json') continue;
    assert.ok(fs.readFileSync(path.join(outs.train!, name)).equals(fs.readFileSync(path.join(again.train!, name))), `${name} differs between runs`);
  }
});

test('z-score makes brain voxels mean 0 / std 1 and leaves background 0', () => {
  const data = new Float32Array(2 * 4 * 3 * 2);
  for (let i = 0; i < data.length; i++) data[i] = i % 5 === 0 ? 0 : 100 + (i % 7) * 10 + (i >= 24 ? 500 : 0);
  const volume: BratsVolume = { id: 'v', group: 'v', subset: 'HGG', shape: [4, 3, 2], modalities: ['a', 'b'], data, spacing: [1, 1, 1], affine: [], label: null };
  const box = brainBoundingBox(volume)!;
  zscoreBrain(volume);
  for (const m of [0, 1]) {
    const values = Array.from(data.subarray(m * 24, (m + 1) * 24)).filter((_v, i) => (m * 24 + i) % 5 !== 0);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    assert.ok(Math.abs(mean) < 1e-5 && Math.abs(std - 1) < 1e-4, `modality ${m}: mean ${mean} std ${std}`);
  }
  for (let i = 0; i < data.length; i += 5) assert.equal(data[i], 0);
  assert.deepEqual(box, { x: [0, 4], y: [0, 3], z: [0, 2] });
  // Resizes: same size is a copy; nearest never invents values; bilinear of a constant is constant.
  assert.deepEqual(Array.from(resizeNearest(Uint8Array.from([1, 2, 3, 4]), 2, 2, 4, 4)), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  assert.ok(resizeBilinear(new Float32Array(12).fill(2.5), 2, 3, 2, 5, 7).every((v) => Math.abs(v - 2.5) < 1e-6));
});

test('adapter: prepare replays preprocess.brats slice for slice; restore + write give back the label volume', async () => {
  const outs = await runPreprocess(params());
  const transform = JSON.parse(fs.readFileSync(outs.transform!, 'utf8')) as JsonObject;
  const written = new Map<string, { x: Float32Array; y: Uint8Array }>();
  for (const dir of [outs.train!, outs.val!]) {
    for await (const s of readTensorDataset(dir)) written.set(s.id, { x: s.x as Float32Array, y: s.y as Uint8Array });
  }
  const outDir = makeTempDir();
  let compared = 0;
  for await (const view of readExamples(recordsDir)) {
    const id = getString(view.features, 'id');
    const prepared = await bratsAdapter.prepare(view.features, transform);
    assert.deepEqual(prepared.itemShape, [64, 64, 4]);
    const box = prepared.context.box as { z: number[] };
    assert.equal(prepared.count, box.z[1]! - box.z[0]!);
    const per = 64 * 64 * 4;
    for (let k = 0; k < prepared.count; k++) {
      const z = box.z[0]! + k;
      const fromStage = written.get(`${id}:z${String(z).padStart(3, '0')}`);
      if (!fromStage) continue;
      assert.deepEqual(prepared.x.subarray(k * per, (k + 1) * per), fromStage.x, `${id} slice ${z}`);
      compared++;
    }
    const bg = await bratsAdapter.background(prepared, null);
    assert.equal(bg.data.length, 64 * 64 * 3);
    assert.ok(bg.data.some((v) => v > 200) && bg.data.some((v) => v === 0));
    if (prepared.label === null) {
      assert.equal(id, 'BraTS19_SYN_0101_1');
      continue;
    }
    // Perfect one-hot "probabilities" from the label itself must restore the exact label volume.
    const sample = index.samples.find((s) => s.id === id)!;
    const [Z, Y, X] = prepared.label.shape as [number, number, number];
    const zBox = prepared.context.box as { x: number[]; y: number[]; z: number[] };
    const h = zBox.y[1]! - zBox.y[0]!, w = zBox.x[1]! - zBox.x[0]!;
    const toClass: Record<number, number> = { 0: 0, 1: 1, 2: 2, 4: 3 };
    const probabilities = new Float32Array(prepared.count * 64 * 64 * 4);
    for (let k = 0; k < prepared.count; k++) {
      const z = zBox.z[0]! + k;
      const crop = new Uint8Array(h * w);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) crop[y * w + x] = toClass[prepared.label.data[(z * Y + y + zBox.y[0]!) * X + x + zBox.x[0]!]!]!;
      const up = resizeNearest(crop, h, w, 64, 64);
      for (let p = 0; p < up.length; p++) probabilities[(k * 64 * 64 + p) * 4 + up[p]!] = 1;
    }
    const restored = await bratsAdapter.restore(probabilities, 4, prepared, transform);
    assert.deepEqual(restored.shape, [Z, Y, X]);
    assert.deepEqual(restored.spacing, prepared.label.spacing);
    let differ = 0;
    for (let i = 0; i < restored.data.length; i++) if (restored.data[i] !== prepared.label.data[i]) differ++;
    assert.equal(differ, 0, `${id}: restored labels differ in ${differ} voxels`);
    const file = path.join(outDir, `${id}${bratsAdapter.extension}`);
    await bratsAdapter.write(restored, prepared, file);
    const back = await readNifti(file);
    const source = await readNifti(path.join(index.root, sample.label!));
    assert.deepEqual(back.dims, source.dims);
    assert.deepEqual(back.spacing, source.spacing);
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(back.affine[i]! - source.affine[i]!) < 1e-5, `${id} affine[${i}]`);
    assert.deepEqual(back.data, source.data);
  }
  assert.ok(compared > 40, `compared ${compared} slices`);
});

test('patches3d: [D, H, W, 4] patches, tumour-centred share, same split', async () => {
  const outs = await runPreprocess(params({ mode: 'patches3d', patch: [16, 24, 24], patches_per_patient: 4, tumour_fraction: 1 }));
  const spec = await readTensorSpec(outs.train!);
  assert.deepEqual(spec.x.shape, [16, 24, 24, 4]);
  assert.deepEqual(spec.y.shape, [16, 24, 24, 1]);
  assert.equal(spec.count, 3 * 4);
  for await (const s of readTensorDataset(outs.train!)) assert.ok(s.y.some((v) => v !== 0), `${s.id}: tumour_fraction 1 centres every patch on tumour`);
  const transform = JSON.parse(fs.readFileSync(outs.transform!, 'utf8'));
  assert.deepEqual(transform.patch, [16, 24, 24]);
});

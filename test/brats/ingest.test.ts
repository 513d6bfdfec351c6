import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import stage from '../../stages/brats-ingest/index.js';
import { DEFAULT_LABEL_MAP, DEFAULT_MODALITIES, type BratsIndex, type BratsIngestParams, type BratsReport } from '../../lib/datasets/brats/ingest.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { writeTinyPatient } from './helpers.js';

const defaults = (): BratsIngestParams => ({ strict: false, label_map: { ...DEFAULT_LABEL_MAP }, modalities: [...DEFAULT_MODALITIES] });

async function runIngest(root: string, params: BratsIngestParams = defaults()) {
  const run = stageContext(stage, params, { root });
  const outcome = await stage.run(run.ctx);
  assert.equal(outcome.status, 'done');
  const index = JSON.parse(fs.readFileSync(run.ctx.outs.index!, 'utf8')) as BratsIndex;
  const report = JSON.parse(fs.readFileSync(path.join(run.ctx.outs.report!, 'report.json'), 'utf8')) as BratsReport;
  const text = fs.readFileSync(path.join(run.ctx.outs.report!, 'report.txt'), 'utf8');
  return { index, report, text, run };
}

/** Runs the stage expecting an error; checks the message and that no output looks complete. */
async function expectFailure(root: string, params: BratsIngestParams, pattern: RegExp): Promise<void> {
  const run = stageContext(stage, params, { root });
  await assert.rejects(stage.run(run.ctx), pattern);
  assert.equal(fs.existsSync(run.ctx.outs.index!), false, 'no index.json after a failure');
}

test('ingests the shipped sample: counts, geometry, datatypes, intensities, labels', async () => {
  const root = path.join(samplesDir, 'brats');
  const { index, report, text } = await runIngest(root);
  assert.equal(index.dataset, 'brats');
  assert.equal(index.samples.length, 10);
  assert.deepEqual(report.counts.bySubset, { HGG: 5, LGG: 3, Validation: 2 });
  assert.equal(index.skipped.length, 0);
  const first = index.samples.find((s) => s.id === 'BraTS19_SYN_0001_1')!;
  assert.deepEqual(first, {
    id: 'BraTS19_SYN_0001_1',
    group: 'BraTS19_SYN_0001_1',
    subset: 'HGG',
    images: Object.fromEntries(DEFAULT_MODALITIES.map((m) => [m, `Training/HGG/BraTS19_SYN_0001_1/BraTS19_SYN_0001_1_${m}.nii.gz`])),
    label: 'Training/HGG/BraTS19_SYN_0001_1/BraTS19_SYN_0001_1_seg.nii.gz',
  });
  assert.equal(index.samples.find((s) => s.subset === 'Validation')!.label, null);
  assert.deepEqual(report.dims, { '64x64x48': 10 });
  assert.deepEqual(report.spacings, { '1x1x1': 9, '1.2x1.2x2': 1 });
  assert.deepEqual(report.datatypes.flair, { int16: 9, float32: 1 });
  assert.deepEqual(report.datatypes.seg, { uint8: 8 });
  for (const m of DEFAULT_MODALITIES) {
    const st = report.intensity[m]!;
    assert.ok(st.min >= 1 && st.max > st.mean && st.mean > st.min && st.brainVoxels > 100000, `${m}: ${JSON.stringify(st)}`);
  }
  assert.deepEqual(Object.keys(report.labels.values), ['0', '1', '2', '4']);
  assert.equal(report.labels.values['2']!.name, 'edema');
  assert.equal(report.labels.unexpected.length, 0);
  const sumFractions = Object.values(report.labels.values).reduce((a, v) => a + v.fraction, 0);
  assert.ok(Math.abs(sumFractions - 1) < 1e-4);
  assert.match(text, /patients: 10 \(HGG 5, LGG 3, Validation 2\)/);
  assert.match(text, /edema/);
});

test('the official training download (HGG/ and LGG/ directly under the root) is accepted as it is', async () => {
  const root = makeTempDir('flow-brats-official-');
  fs.cpSync(path.join(samplesDir, 'brats', 'Training'), root, { recursive: true });
  fs.writeFileSync(path.join(root, 'name_mapping.csv'), 'Grade,BraTS_2019_subject_ID\n');
  const { index, report } = await runIngest(root);
  assert.deepEqual(report.counts.bySubset, { HGG: 5, LGG: 3, Validation: 0 });
  const first = index.samples.find((s) => s.id === 'BraTS19_SYN_0001_1')!;
  assert.equal(first.label, 'HGG/BraTS19_SYN_0001_1/BraTS19_SYN_0001_1_seg.nii.gz');
  assert.equal(fs.existsSync(path.join(root, first.images.flair!)), true);
});

test('missing modality: patient skipped with the reason; strict names the file', async () => {
  const root = makeTempDir();
  await writeTinyPatient(root, 'HGG', 'P1');
  await writeTinyPatient(root, 'HGG', 'P2', { omit: ['t1ce'] });
  const { index, report } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), ['P1']);
  assert.equal(report.skipped.length, 1);
  assert.equal(report.skipped[0]!.path, path.join('Training', 'HGG', 'P2'));
  assert.match(report.skipped[0]!.reason, /missing t1ce \(expected P2_t1ce\.nii\.gz/);
  await expectFailure(root, { ...defaults(), strict: true }, /Training\/HGG\/P2\/P2_t1ce\.nii\.gz: incomplete patient: missing t1ce/);
});

test('missing seg in Training is incomplete; Validation needs none', async () => {
  const root = makeTempDir();
  await writeTinyPatient(root, 'LGG', 'P1', { omit: ['seg'] });
  await writeTinyPatient(root, 'LGG', 'P2');
  await writeTinyPatient(root, 'Validation', 'V1');
  const { index, report } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), ['P2', 'V1']);
  assert.match(report.skipped[0]!.reason, /missing seg/);
});

test('corrupt gzip in a .nii.gz: reported with the file; strict is an error naming it', async () => {
  const root = makeTempDir();
  await writeTinyPatient(root, 'HGG', 'P1');
  const folder = await writeTinyPatient(root, 'HGG', 'P2');
  const file = path.join(folder, 'P2_t2.nii.gz');
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const { index, report } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), ['P1']);
  assert.equal(report.skipped[0]!.path, path.join('Training', 'HGG', 'P2', 'P2_t2.nii.gz'));
  assert.match(report.skipped[0]!.reason, /not a valid gzip stream \(corrupt or truncated download\?\)/);
  await expectFailure(root, { ...defaults(), strict: true }, /P2\/P2_t2\.nii\.gz: not a valid gzip stream/);
});

test('modalities with mismatched dimensions are reported with both sizes', async () => {
  const root = makeTempDir();
  await writeTinyPatient(root, 'HGG', 'P1');
  await writeTinyPatient(root, 'HGG', 'P2', { dimsOf: { t1: [12, 10, 7] } });
  const { index, report } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), ['P1']);
  assert.match(report.skipped[0]!.reason, /dimensions differ: P2_flair\.nii\.gz is 12x10x8 but P2_t1\.nii\.gz is 12x10x7/);
  await expectFailure(root, { ...defaults(), strict: true }, /P2\/P2_t1\.nii\.gz: dimensions differ/);
});

test('a label value outside the label map skips the patient, naming the seg file and the param; strict makes it an error', async () => {
  const root = makeTempDir();
  await writeTinyPatient(root, 'HGG', 'P1', { extraLabel: { value: 3, voxels: 5 } });
  await writeTinyPatient(root, 'HGG', 'P2');
  const { index, report, text } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), ['P2'], 'the patient with an unknown label is skipped');
  assert.deepEqual(report.labels.unexpected, [{ patient: 'P1', file: path.join('Training', 'HGG', 'P1', 'P1_seg.nii.gz'), value: 3, voxels: 5 }]);
  assert.equal(report.skipped[0]!.path, path.join('Training', 'HGG', 'P1', 'P1_seg.nii.gz'));
  assert.match(report.skipped[0]!.reason, /patient P1: label value\(s\) 3 \(5 px\/voxels\) not in the label map \{0, 1, 2, 4\}; add them to stages\.test-brats\.ingest\.params\.label_map/);
  assert.match(text, /unexpected label 3 in .*P1_seg\.nii\.gz \(patient P1\): 5 voxels/);
  await expectFailure(root, { ...defaults(), strict: true }, /P1\/P1_seg\.nii\.gz: patient P1: label value\(s\) 3 \(5 px\/voxels\) not in the label map/);
  // The same value is fine under a label map that has it (BraTS 2023 style).
  const relabelled = await runIngest(root, { ...defaults(), strict: true, label_map: { ...DEFAULT_LABEL_MAP, '3': 'enhancing (2023)' } });
  assert.equal(relabelled.report.labels.unexpected.length, 0);
});

test('empty root and a Carvana root give errors that say what was expected and found', async () => {
  const empty = makeTempDir();
  await expectFailure(empty, defaults(), /not a BraTS folder: expected the BraTS 2019 layout: Training\/\{HGG,LGG\}.*the folder is empty/);

  const carvana = makeTempDir();
  fs.mkdirSync(path.join(carvana, 'train'));
  fs.mkdirSync(path.join(carvana, 'train_masks'));
  await sharp({ create: { width: 24, height: 16, channels: 3, background: { r: 200, g: 30, b: 30 } } }).jpeg().toFile(path.join(carvana, 'train', 'abc_01.jpg'));
  await sharp({ create: { width: 24, height: 16, channels: 3, background: { r: 255, g: 255, b: 255 } } }).gif().toFile(path.join(carvana, 'train_masks', 'abc_01_mask.gif'));
  await expectFailure(carvana, defaults(), /looks like a Carvana folder \(train\/, train_masks\/\).*carvana\.ingest.*found train\/, train_masks\//);

  const emptyTraining = makeTempDir();
  fs.mkdirSync(path.join(emptyTraining, 'Training', 'HGG'), { recursive: true });
  await expectFailure(emptyTraining, defaults(), /no patient folders under Training\/HGG/);

  await expectFailure(path.join(empty, 'nope'), defaults(), /nope: the BraTS root folder does not exist/);
});

test('BraTS 2021+ labelling (3 = enhancing): label_map with 3 but the 2019 regions is refused at ingest, naming the region', async () => {
  const root = makeTempDir();
  await writeTinyPatient(root, 'HGG', 'P1', { extraLabel: { value: 3, voxels: 5 } });
  await writeTinyPatient(root, 'HGG', 'P2');
  const labels2021 = { '0': 'background', '1': 'necrotic core', '2': 'edema', '3': 'enhancing tumour' };
  // The old silent failure: ET = {4} held no voxels and every patient scored ET Dice 1.0.
  await expectFailure(root, { ...defaults(), label_map: labels2021 }, /stages\.test-brats\.ingest\.params \(label_map and regions\): region WT holds 4, which is not a class value \(classes: 0, 1, 2, 3\)/);
  const { index } = await runIngest(root, { ...defaults(), label_map: labels2021, regions: { WT: [1, 2, 3], TC: [1, 3], ET: [3] } });
  assert.deepEqual(index.labels.regions, { WT: [1, 2, 3], TC: [1, 3], ET: [3] });
  assert.deepEqual(index.samples.map((s) => s.id), ['P1', 'P2']);
});

test('the official Validation folder, or a parent of both official folders, is a root too', async () => {
  const parent = makeTempDir();
  const training = path.join(parent, 'MICCAI_BraTS_2019_Data_Training');
  await writeTinyPatient(training, 'HGG', 'P1');
  const validationRoot = makeTempDir();
  await writeTinyPatient(validationRoot, 'Validation', 'V1');
  fs.renameSync(path.join(validationRoot, 'Validation'), path.join(parent, 'MICCAI_BraTS_2019_Data_Validation'));
  // HGG/ directly under the training folder, as the official download unzips.
  fs.renameSync(path.join(training, 'Training', 'HGG'), path.join(training, 'HGG'));
  const both = await runIngest(parent);
  assert.deepEqual(both.index.samples.map((s) => `${s.id}:${s.subset}`), ['P1:HGG', 'V1:Validation']);
  const alone = await runIngest(path.join(parent, 'MICCAI_BraTS_2019_Data_Validation'));
  assert.deepEqual(alone.index.samples.map((s) => `${s.id}:${s.subset}`), ['V1:Validation']);
});

// NIfTI layouts end to end: generated nnU-Net v2 (two channels, anisotropic, shapes differing per case) and
// Decathlon (3D, and 4D with channels last) folders → `flow init` → `flow run` on tiny settings. Predictions
// must be <case>.nii.gz label maps on the source grid (dims, spacing and affine of the case's image) in the
// dataset's own values; metrics.json must equal a Dice recomputed here. Bad inputs are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeMsdSample, makeNnunetSample } from '../../scripts/make-samples/nifti.js';
import { readNifti } from '../../lib/nifti/read.js';
import { writeNifti } from '../../lib/nifti/write.js';
import { ingestNifti, type NiftiIngestParams } from '../../lib/datasets/volumes/ingest.js';
import { flow, latestRunDir, makeFlowHome, readJsonFile, setArgs } from '../e2e/helpers.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { DEFAULT_LABEL_MAP, DEFAULT_MODALITIES, ingestBrats } from '../../lib/datasets/brats/ingest.js';
import { diceOfValue } from './helpers.js';

const TINY = ['train.epochs=1', 'train.input_size=[32,32]', 'train.filters=4'];


interface Metrics {
  regions: Record<string, { empty: boolean; per_case: { id: string; dice: number }[] }>;
  mean_dice?: number;
}

/** init → run; then every prediction against its source image's grid and its label, Dice recomputed. */
async function initRunCheck(root: string, imageOf: (id: string) => string, labelOf: (id: string) => string, classes: Record<string, number>): Promise<Metrics & { runDir: string; pipeline: string }> {
  const home = makeFlowHome('flow-nifti-');
  const pipeline = path.join(home.dir, 'plan.yaml');
  const init = await flow(home, ['init', root, '-o', pipeline]);
  assert.equal(init.code, 0, init.stderr);
  const run = await flow(home, ['run', pipeline, ...setArgs(TINY)]);
  assert.equal(run.code, 0, run.stderr);
  const runDir = latestRunDir(home, /^name: (.+)$/m.exec(fs.readFileSync(pipeline, 'utf8'))![1]!);
  const metrics = readJsonFile<Metrics>(path.join(runDir, 'metrics.json'));
  const predDir = path.join(runDir, 'stages', 'predict', 'predictions', 'pred');
  const files = fs.readdirSync(predDir);
  assert.ok(files.length > 0);
  for (const file of files) {
    const id = file.replace(/\.nii\.gz$/, '');
    const prediction = await readNifti(path.join(predDir, file));
    const image = await readNifti(path.join(root, imageOf(id)));
    const label = await readNifti(path.join(root, labelOf(id)));
    assert.deepEqual(prediction.dims, image.dims.slice(0, 3), `${file}: the source dims`);
    prediction.spacing.forEach((s, k) => assert.ok(Math.abs(s - image.spacing[k]!) < 1e-5, `${file}: spacing ${prediction.spacing} vs ${image.spacing}`));
    prediction.affine.forEach((a, k) => assert.ok(Math.abs(a - image.affine[k]!) < 1e-4, `${file}: affine ${prediction.affine} vs ${image.affine}`));
    const allowed = new Set([0, ...Object.values(classes)]);
    for (const v of new Set(prediction.data)) assert.ok(allowed.has(v), `${file}: value ${v} is a label value of the dataset`);
    for (const [region, value] of Object.entries(classes)) {
      const report = metrics.regions[region]!;
      if (report.empty) continue;
      const reported = report.per_case.find((c) => c.id === id)!;
      assert.ok(Math.abs(reported.dice - diceOfValue(prediction.data, label.data, value)) < 1e-9, `${id} ${region}: ${reported.dice}`);
    }
  }
  return { ...metrics, runDir, pipeline };
}

test('nnU-Net v2, two channels, 0.6 x 0.6 x 3.6 mm: init → run, <case>.nii.gz on the source grid, Dice recomputed', async () => {
  const root = path.join(makeTempDir(), 'Dataset042_Prostate');
  await makeNnunetSample(root, 5);
  const metrics = await initRunCheck(root, (id) => `imagesTr/${id}_0000.nii.gz`, (id) => `labelsTr/${id}.nii.gz`, { PZ: 1, TZ: 2 });
  assert.equal(typeof metrics.mean_dice, 'number');
});

test('Decathlon 4D (channels last): init → run; a class absent from every label is reported empty, not scored', async () => {
  const root = path.join(makeTempDir(), 'Task01_BrainTumour');
  await makeMsdSample(root, { fourD: true, cases: 5 });
  const metrics = await initRunCheck(root, (id) => `imagesTr/${id}.nii.gz`, (id) => `labelsTr/${id}.nii.gz`, { edema: 1, 'non-enhancing tumor': 2, 'enhancing tumour': 3 });
  assert.equal(metrics.regions['non-enhancing tumor']!.empty, true);
  assert.equal(metrics.regions.edema!.empty, false);
});

test('Decathlon 3D CT: init plans clip-then-z-score from the foreground percentiles; run, binary spleen', async () => {
  const root = path.join(makeTempDir(), 'Task09_Spleen');
  await makeMsdSample(root, { fourD: false, cases: 4, ct: true });
  const { runDir, pipeline } = await initRunCheck(root, (id) => `imagesTr/${id}.nii.gz`, (id) => `labelsTr/${id}.nii.gz`, { spleen: 1 });
  const clip = /^\s+clip: (\{.*\}) +# CT \(CT\): clipped to the 0\.5-99\.5 percentiles of the foreground voxels/m.exec(fs.readFileSync(pipeline, 'utf8'));
  assert.ok(clip, 'the plan clips the CT channel and says why');
  const [lo, hi] = (JSON.parse(clip[1]!) as { CT: [number, number] }).CT;
  assert.ok(lo > -1024 && hi < 3000 && lo < hi, `clip [${lo}, ${hi}] leaves out air and metal`);
  const transform = readJsonFile<{ clip: Record<string, number[]> }>(path.join(runDir, 'stages', 'preprocess', 'transform'));
  assert.deepEqual(transform.clip, { CT: [lo, hi] }, 'transform.json records the clip predict replays');
});

const params = (over: Partial<NiftiIngestParams> = {}): NiftiIngestParams => ({ layout: 'auto', regions: null, ignore: [], strict: false, ...over });

test('bad NIfTI inputs name the file: dataset.json that disagrees, a missing channel file, different channel counts, an off-map label', async () => {
  const nn = path.join(makeTempDir(), 'nn');
  await makeNnunetSample(nn, 4);
  fs.rmSync(path.join(nn, 'imagesTr', 'prostate_01_0001.nii.gz'));
  const json = JSON.parse(fs.readFileSync(path.join(nn, 'dataset.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(nn, 'dataset.json'), JSON.stringify({ ...json, numTraining: 9 }));
  const seg = await readNifti(path.join(nn, 'labelsTr', 'prostate_02.nii.gz'));
  const data = Uint8Array.from(seg.data);
  data[0] = 7;
  await writeNifti(path.join(nn, 'labelsTr', 'prostate_02.nii.gz'), { dims: seg.dims, spacing: seg.spacing, affine: seg.affine, datatype: 'uint8', data });
  const { index, report } = (await ingestNifti(nn, params(), { paramPath: 'stages.ingest.params' }))!;
  const reasons = Object.fromEntries(report.skipped.map((s) => [s.path, s.reason]));
  assert.deepEqual(index.samples.map((s) => s.id).sort(), ['prostate_00', 'prostate_03', 'prostate_04']);
  assert.match(reasons['imagesTr/prostate_01_0001.nii.gz']!, /case prostate_01: channel file\(s\) missing for 0001 \(ADC\); dataset\.json channel_names declares 2/);
  assert.match(reasons['labelsTr/prostate_02.nii.gz']!, /case prostate_02: label value\(s\) 7 \(1 px\/voxels\) not in the label map \{0, 1, 2\}; add them to .*dataset\.json labels/);
  assert.match(report.disagreements[0]!, /dataset\.json: numTraining is 9 but imagesTr\/ holds 4 case\(s\)/);
  await assert.rejects(ingestNifti(nn, params({ strict: true }), { paramPath: 'stages.ingest.params' }), /nifti\.ingest \(strict\): .*dataset\.json: numTraining is 9.*set stages\.ingest\.params\.strict: false/);

  const msd = path.join(makeTempDir(), 'msd');
  await makeMsdSample(msd, { fourD: true, cases: 3 });
  const three = await readNifti(path.join(msd, 'imagesTr', 'BRATS_004.nii.gz'));
  const [X, Y, Z] = three.dims as [number, number, number];
  await writeNifti(path.join(msd, 'imagesTr', 'BRATS_004.nii.gz'), { dims: [X, Y, Z, 3], spacing: three.spacing, affine: three.affine, datatype: 'float32', data: three.data.subarray(0, X * Y * Z * 3) });
  const listing = JSON.parse(fs.readFileSync(path.join(msd, 'dataset.json'), 'utf8')) as { training: { image: string; label: string }[] };
  listing.training.push({ image: './imagesTr/BRATS_099.nii.gz', label: './labelsTr/BRATS_099.nii.gz' });
  fs.writeFileSync(path.join(msd, 'dataset.json'), JSON.stringify(listing));
  const msdResult = (await ingestNifti(msd, params()))!;
  const msdReasons = Object.fromEntries(msdResult.report.skipped.map((s) => [s.path, s.reason]));
  assert.match(msdReasons['imagesTr/BRATS_004.nii.gz']!, /case BRATS_004: the image has 3 channel\(s\) .* but dataset\.json modality declares 4/);
  assert.match(msdReasons['imagesTr/BRATS_099.nii.gz']!, /case BRATS_099: listed in dataset\.json training\[\d\] but the file is missing/);
  assert.match(msdReasons['imagesTr/._BRATS_003.nii.gz']!, /resource fork/);
});

test('per-case folders declared by templates: BraTS 2019 is one instance, giving the cases brats.ingest gives', async () => {
  const root = path.join(samplesDir, 'brats');
  const folders = (await ingestNifti(root, {
    ...params({ layout: 'folders', strict: true }),
    cases: 'Training/*/*', test_cases: 'Validation/*', label: '{case}_seg.nii.gz',
    channels: { flair: '{case}_flair.nii.gz', t1: '{case}_t1.nii.gz', t1ce: '{case}_t1ce.nii.gz', t2: '{case}_t2.nii.gz' },
    labels: { 0: 'background', 1: 'necrotic/non-enhancing core', 2: 'edema', 4: 'enhancing tumour' },
  }))!;
  const brats = (await ingestBrats(root, { strict: true, label_map: { ...DEFAULT_LABEL_MAP }, modalities: [...DEFAULT_MODALITIES] }))!;
  const view = (samples: { id: string; images: Record<string, string>; label: string | null }[]) =>
    samples.map((s) => ({ id: s.id, images: Object.fromEntries(Object.entries(s.images).map(([k, f]) => [k, f.split(path.sep).join('/')])), label: s.label?.split(path.sep).join('/') ?? null })).sort((a, b) => (a.id < b.id ? -1 : 1));
  assert.deepEqual(view(folders.index.samples), view(brats.index.samples));
  assert.equal(folders.index.dataset, 'case-folders');
  assert.deepEqual(folders.index.labels.classes.map((c) => c.value), [0, 1, 2, 4]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import predict, { type PredictParams } from '../../stages/predict/index.js';
import evaluate, { type EvaluateParams } from '../../stages/evaluate/index.js';
import type { BratsIndex } from '../../lib/datasets/brats/ingest.js';
import { readNifti } from '../../lib/nifti/read.js';
import { LEGEND_HEIGHT, PANEL_GAP } from '../../lib/plot/index.js';
import { initBackend } from '../../lib/tf/backend.js';
import { saveModelToDir } from '../../lib/tf/model-io.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { writeBratsRecords } from '../brats/records.js';
import { BRATS_LABELS } from '../../lib/datasets/brats/ingest.js';

test('predict on BraTS records: .nii.gz label maps with the source geometry, panels, evaluate WT/TC/ET', async () => {
  await initBackend('cpu');
  const root = path.join(samplesDir, 'brats');
  const chosen = ['BraTS19_SYN_0001_1', 'BraTS19_SYN_0101_1'];
  // The index brats.ingest would write for these two patients (docs/contracts.md), without scanning all ten.
  const sample = (id: string, folder: string, labelled: boolean): BratsIndex['samples'][number] => ({
    id, group: id, subset: folder.startsWith('Training') ? (folder.endsWith('HGG') ? 'HGG' : 'LGG') : 'Validation',
    images: Object.fromEntries(['flair', 't1', 't1ce', 't2'].map((m) => [m, `${folder}/${id}/${id}_${m}.nii.gz`])),
    label: labelled ? `${folder}/${id}/${id}_seg.nii.gz` : null,
  }) as BratsIndex['samples'][number];
  const index = { dataset: 'brats', root, samples: [sample(chosen[0]!, 'Training/HGG', true), sample(chosen[1]!, 'Validation', false)], skipped: [], labels: BRATS_LABELS, files: {} } as unknown as BratsIndex;
  const dir = makeTempDir('flow-predict-brats-');
  const data = path.join(dir, 'records');
  await writeBratsRecords(index, data);
  const model = buildUNet({ inputShape: [32, 32, 4], classes: 4, filters: 4, depth: 2, batchNorm: false, seed: 5 });
  await saveModelToDir(model, path.join(dir, 'model'));
  model.dispose();
  fs.writeFileSync(path.join(dir, 'transform.json'), JSON.stringify({
    dataset: 'brats', labels: BRATS_LABELS, mode: 'slices2d', size: [32, 32], modalities: ['flair', 't1', 't1ce', 't2'],
    zscore: 'brain-nonzero', crop: 'brain-bbox', labelMap: { train: { '0': 0, '1': 1, '2': 2, '4': 3 } },
  }));
  fs.writeFileSync(path.join(dir, 'split.json'), JSON.stringify({ seed: 1, train: [], val: [chosen[0]], trainIds: [], valIds: [chosen[0]] }));
  const params: PredictParams = { backend: 'cpu', batch_size: 16, subset: 'all', panels: 5, panel_width: 512 };
  const { ctx } = stageContext(predict, params, {
    model: path.join(dir, 'model'), data, split: path.join(dir, 'split.json'), transform: path.join(dir, 'transform.json'),
  });
  assert.equal((await predict.run(ctx)).status, 'done');

  const out = ctx.outs.predictions!;
  const pairs = JSON.parse(fs.readFileSync(path.join(out, 'pairs.json'), 'utf8'));
  assert.equal(pairs.format, 'nifti');
  assert.deepEqual(pairs.labelValues, [0, 1, 2, 4]);
  assert.equal(pairs.decision.threshold, null);
  const [trainCase, validationCase] = pairs.cases;
  assert.equal(trainCase.id, chosen[0]);
  assert.equal(validationCase.label, null, 'a Validation patient has no label');
  const sourceSeg = await readNifti(path.join(root, 'Training/HGG', chosen[0]!, `${chosen[0]}_seg.nii.gz`));
  const label = await readNifti(path.join(out, trainCase.label));
  const prediction = await readNifti(path.join(out, trainCase.prediction));
  assert.deepEqual(Array.from(label.data), Array.from(sourceSeg.data), 'label/ holds the original segmentation');
  assert.deepEqual(prediction.dims.slice(0, 3), sourceSeg.dims.slice(0, 3));
  assert.deepEqual(prediction.spacing.slice(0, 3), sourceSeg.spacing.slice(0, 3));
  assert.deepEqual(prediction.affine.map((v) => Number(v.toFixed(4))), sourceSeg.affine.map((v) => Number(v.toFixed(4))));
  assert.ok(prediction.data.every((v) => v === 0 || v === 1 || v === 2 || v === 4), 'predictions hold BraTS labels 0/1/2/4');

  const panels = fs.readdirSync(ctx.outs.panels!).sort();
  assert.equal(panels.length, 2);
  const [X, Y] = sourceSeg.dims as [number, number];
  const meta = await sharp(path.join(ctx.outs.panels!, panels[0]!)).metadata();
  assert.deepEqual([meta.width, meta.height], [3 * X + 2 * PANEL_GAP, Y + LEGEND_HEIGHT]);

  const evalParams: EvaluateParams = { regions: null, threshold: null, spacing_2d: [1, 1] };
  const evaluation = stageContext(evaluate, evalParams, { predictions: out });
  assert.equal((await evaluate.run(evaluation.ctx)).status, 'done');
  const metrics = JSON.parse(fs.readFileSync(evaluation.ctx.outs.metrics!, 'utf8'));
  assert.deepEqual(Object.keys(metrics.regions), ['WT', 'TC', 'ET']);
  assert.equal(metrics.cases.evaluated, 1);
  assert.equal(metrics.cases.without_label, 1);
  for (const key of ['WT_dice', 'TC_dice', 'ET_dice', 'WT_hd95']) assert.equal(typeof metrics[key], 'number', key);
});

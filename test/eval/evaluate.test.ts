import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import evaluate, { type EvaluateParams } from '../../stages/evaluate/index.js';
import { encodePng } from '../../lib/image/index.js';
import { writeNifti } from '../../lib/nifti/write.js';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { BRATS_LABELS } from '../../lib/datasets/brats/ingest.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';

const close = (actual: unknown, expected: number, tolerance = 1e-9): void =>
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${String(actual)}`);

const defaults: EvaluateParams = { regions: null, threshold: null, spacing_2d: [1, 1] };

async function writeMask(file: string, width: number, height: number, on: Array<[number, number]>): Promise<void> {
  const data = new Uint8Array(width * height);
  for (const [row, col] of on) data[row * width + col] = 255;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await encodePng({ data, width, height, channels: 1 }));
}

test('evaluate on Carvana PNG masks: per-case and mean Dice, pooled Dice, HD95; unlabelled cases counted', async () => {
  const dir = makeTempDir('flow-eval-png-');
  // case a: identical 2x2 squares → Dice 1, HD95 0.
  await writeMask(path.join(dir, 'pred/a.png'), 8, 6, [[2, 2], [2, 3], [3, 2], [3, 3]]);
  await writeMask(path.join(dir, 'label/a.png'), 8, 6, [[2, 2], [2, 3], [3, 2], [3, 3]]);
  // case b: label (1,1),(1,2); prediction (1,2),(1,3): TP 1, FP 1, FN 1 → Dice 0.5, IoU 1/3.
  // Surface distances (every pixel is surface): pred→label [0, 1], label→pred [1, 0]; pooled [0,0,1,1] → HD95 1.
  await writeMask(path.join(dir, 'pred/b.png'), 8, 6, [[1, 2], [1, 3]]);
  await writeMask(path.join(dir, 'label/b.png'), 8, 6, [[1, 1], [1, 2]]);
  await writeMask(path.join(dir, 'pred/c.png'), 8, 6, [[0, 0]]);
  fs.writeFileSync(path.join(dir, 'pairs.json'), JSON.stringify({
    dataset: 'carvana', labelValues: [0, 255], labels: CARVANA_LABELS, format: 'png',
    decision: { rule: 'sigmoid probability > threshold', threshold: 0.5 },
    cases: [
      { id: 'a', prediction: 'pred/a.png', label: 'label/a.png', spacing: [1, 1] },
      { id: 'b', prediction: 'pred/b.png', label: 'label/b.png', spacing: [1, 1] },
      { id: 'c', prediction: 'pred/c.png', label: null, spacing: [1, 1] },
    ],
  }));
  const { ctx } = stageContext(evaluate, defaults, { predictions: dir });
  const outcome = await evaluate.run(ctx);
  assert.equal(outcome.status, 'done');
  const metrics = JSON.parse(fs.readFileSync(ctx.outs.metrics!, 'utf8'));
  close(metrics.dice, 0.75);
  close(metrics.global_dice, (2 * 5) / (2 * 5 + 1 + 1));
  close(metrics.iou, (1 + 1 / 3) / 2);
  close(metrics.hd95, 0.5);
  close(metrics.sensitivity, (1 + 0.5) / 2);
  assert.deepEqual(metrics.cases, { total: 3, evaluated: 2, without_label: 1, without_label_ids: ['c'] });
  assert.deepEqual(metrics.definitions.regions, { car: [255] });
  assert.equal(metrics.definitions.threshold, 0.5);
  assert.match(metrics.definitions.dice, /mean over cases of per-case Dice/);
  assert.match(metrics.definitions.empty_masks, /both empty: Dice 1/);
  assert.equal(metrics.regions.car.per_case[1].id, 'b');
  close(metrics.regions.car.per_case[1].dice, 0.5);
  const csv = fs.readFileSync(ctx.outs.table!, 'utf8').trim().split('\n');
  assert.equal(csv[0], 'id,region,dice,iou,sensitivity,specificity,hd95,tp,fp,fn,tn');
  assert.equal(csv.length, 3);
  assert.match(csv[2]!, /^b,car,0\.5,0\.333/);
});

test('evaluate on BraTS .nii.gz label maps: WT/TC/ET with anisotropic spacing from the header', async () => {
  const dir = makeTempDir('flow-eval-nii-');
  fs.mkdirSync(path.join(dir, 'pred'));
  fs.mkdirSync(path.join(dir, 'label'));
  const dims = [4, 3, 2];
  const spacing = [1, 1, 2.5];
  const at = (x: number, y: number, z: number): number => x + dims[0]! * (y + dims[1]! * z);
  const label = new Uint8Array(24);
  label[at(0, 0, 0)] = 4;
  label[at(1, 0, 0)] = 2;
  label[at(0, 0, 1)] = 1;
  const prediction = new Uint8Array(24);
  prediction[at(0, 0, 0)] = 4;
  prediction[at(1, 0, 0)] = 2;
  prediction[at(2, 0, 0)] = 2;
  const affine = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2.5, 0, 0, 0, 0, 1];
  await writeNifti(path.join(dir, 'pred/p1.nii.gz'), { dims, spacing, affine, datatype: 'uint8', data: prediction });
  await writeNifti(path.join(dir, 'label/p1.nii.gz'), { dims, spacing, affine, datatype: 'uint8', data: label });
  await writeNifti(path.join(dir, 'pred/v1.nii.gz'), { dims, spacing, affine, datatype: 'uint8', data: prediction });
  fs.writeFileSync(path.join(dir, 'pairs.json'), JSON.stringify({
    dataset: 'brats', labelValues: [0, 1, 2, 4], labels: BRATS_LABELS, decision: { rule: 'argmax', threshold: null }, format: 'nifti',
    cases: [
      { id: 'p1', prediction: 'pred/p1.nii.gz', label: 'label/p1.nii.gz', spacing },
      { id: 'v1', prediction: 'pred/v1.nii.gz', label: null, spacing },
    ],
  }));
  const { ctx } = stageContext(evaluate, defaults, { predictions: dir });
  assert.equal((await evaluate.run(ctx)).status, 'done');
  const metrics = JSON.parse(fs.readFileSync(ctx.outs.metrics!, 'utf8'));
  // ET: the single enhancing voxel matches.
  close(metrics.ET_dice, 1);
  close(metrics.ET_hd95, 0);
  // TC: label {(0,0,0), (0,0,1)}, prediction {(0,0,0)}: Dice 2/3; distances label→pred [0, 2.5 (one 2.5 mm slice)],
  // pred→label [0]; pooled [0, 0, 2.5] → rank 1.9 → 0.9 * 2.5 = 2.25 mm.
  close(metrics.TC_dice, 2 / 3);
  close(metrics.TC_hd95, 2.25);
  close(metrics.TC_sensitivity, 0.5);
  // WT: label {x0z0, x1z0, x0z1}, prediction {x0z0, x1z0, x2z0}: TP 2, FP 1, FN 1 → Dice 2/3;
  // label→pred [0, 0, 2.5], pred→label [0, 0, 1] → pooled sorted [0,0,0,0,1,2.5], rank 4.75 → 1 + 0.75*1.5 = 2.125.
  close(metrics.WT_dice, 2 / 3);
  close(metrics.WT_hd95, 2.125);
  close(metrics.WT_specificity, 20 / 21);
  assert.equal(metrics.cases.without_label, 1);
  assert.match(metrics.definitions.hd95_units, /NIfTI header/);
  assert.deepEqual(metrics.definitions.regions, { WT: [1, 2, 4], TC: [1, 4], ET: [4] });
});

test('evaluate refuses a prediction whose size differs from its label, naming both files', async () => {
  const dir = makeTempDir('flow-eval-bad-');
  await writeMask(path.join(dir, 'pred/a.png'), 8, 6, [[1, 1]]);
  await writeMask(path.join(dir, 'label/a.png'), 6, 6, [[1, 1]]);
  fs.writeFileSync(path.join(dir, 'pairs.json'), JSON.stringify({
    dataset: 'carvana', labelValues: [0, 255], labels: CARVANA_LABELS, decision: { rule: 'sigmoid probability > 0.5', threshold: 0.5 }, format: 'png',
    cases: [{ id: 'a', prediction: 'pred/a.png', label: 'label/a.png' }],
  }));
  const { ctx } = stageContext(evaluate, defaults, { predictions: dir });
  await assert.rejects(evaluate.run(ctx), /case a: prediction .*pred\/a\.png has shape 6x8 but label .*label\/a\.png has 6x6/);
  const empty = makeTempDir('flow-eval-nopairs-');
  const run2 = stageContext(evaluate, defaults, { predictions: empty });
  await assert.rejects(evaluate.run(run2.ctx), /pairs\.json: cannot read/);
});

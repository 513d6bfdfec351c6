import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import predict, { type PredictParams } from '../../stages/predict/index.js';
import evaluate from '../../stages/evaluate/index.js';
import tfrecordWrite from '../../stages/tfrecord-write/index.js';
import type { TFRecordWriteParams } from '../../stages/tfrecord-write/convert.js';
import { decodeGray, decodeMask, decodeRgb } from '../../lib/image/index.js';
import { LEGEND_HEIGHT, PANEL_GAP } from '../../lib/plot/index.js';
import { initBackend } from '../../lib/tf/backend.js';
import { saveModelToDir } from '../../lib/tf/model-io.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';

const carvanaRoot = path.join(samplesDir, 'carvana');

/** Shards + spec.json of the first `count` Carvana sample photos, written by the tfrecord.write stage. */
async function carvanaRecords(dir: string, count: number): Promise<{ data: string; ids: string[] }> {
  const ids = fs.readdirSync(path.join(carvanaRoot, 'train')).filter((f) => f.endsWith('.jpg')).sort().slice(0, count).map((f) => f.replace(/\.jpg$/, ''));
  const indexFile = path.join(dir, 'index.json');
  fs.writeFileSync(indexFile, JSON.stringify({
    dataset: 'carvana', root: carvanaRoot, skipped: [], labels: CARVANA_LABELS, files: {},
    // One group per photo, so tests can split photos of one car (predict selects records by group).
    samples: ids.map((id) => ({ id, group: id, image: `train/${id}.jpg`, label: `train_masks/${id}_mask.gif` })),
  }));
  const params: TFRecordWriteParams = { shard_size: 2, shard_bytes: null, compression: 'none' };
  const { ctx } = stageContext(tfrecordWrite, params, { samples: indexFile });
  assert.equal((await tfrecordWrite.run(ctx)).status, 'done');
  return { data: ctx.outs.shards!, ids };
}

test('predict on Carvana records: PNG masks at the original size, labels, pairs.json, panels; evaluate reads them', async () => {
  await initBackend('cpu');
  const dir = makeTempDir('flow-predict-');
  const { data, ids } = await carvanaRecords(dir, 5);
  const model = buildUNet({ inputShape: [32, 32, 3], classes: 1, filters: 4, depth: 2, batchNorm: false, seed: 3 });
  await saveModelToDir(model, path.join(dir, 'model'));
  model.dispose();
  fs.writeFileSync(path.join(dir, 'transform.json'), JSON.stringify({
    dataset: 'carvana', labels: CARVANA_LABELS, size: [32, 32], channels: 3, resize: { image: 'linear', mask: 'nearest' },
    normalize: { mode: 'dataset', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  }));
  const valIds = [ids[1]!, ids[3]!, ids[4]!];
  fs.writeFileSync(path.join(dir, 'split.json'), JSON.stringify({ seed: 1, train: [ids[0], ids[2]], val: valIds, trainIds: [ids[0], ids[2]], valIds }));
  const params: PredictParams = { backend: 'cpu', batch_size: 2, subset: 'val', panels: 2, panel_width: 512 };
  const inputs = { model: path.join(dir, 'model'), data, split: path.join(dir, 'split.json'), transform: path.join(dir, 'transform.json') };
  const { ctx } = stageContext(predict, params, inputs);
  assert.equal((await predict.run(ctx)).status, 'done');

  const out = ctx.outs.predictions!;
  const pairs = JSON.parse(fs.readFileSync(path.join(out, 'pairs.json'), 'utf8'));
  assert.equal(pairs.dataset, 'carvana');
  assert.equal(pairs.format, 'png');
  assert.deepEqual(pairs.labelValues, [0, 255]);
  assert.deepEqual(pairs.cases.map((c: { id: string }) => c.id), valIds);
  assert.equal(pairs.decision.threshold, 0.5);
  for (const c of pairs.cases as Array<{ id: string; prediction: string; label: string }>) {
    const source = await decodeMask(path.join(carvanaRoot, 'train_masks', `${c.id}_mask.gif`));
    const label = await decodeMask(path.join(out, c.label));
    assert.deepEqual(Buffer.from(label.mask.data), Buffer.from(source.mask.data), `label/${c.id} holds the ground truth mask`);
    const meta = await sharp(path.join(out, c.prediction)).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [source.mask.width, source.mask.height, 1], 'one gray channel at the photo size');
    const predicted = await decodeGray(path.join(out, c.prediction));
    assert.ok(predicted.data.every((v) => v === 0 || v === 255), 'predictions are 0/255 masks');
  }

  // Cases batched together (batch_size 2) get the same predictions as one case per model call.
  const single = stageContext(predict, { ...params, batch_size: 1, panels: 0 }, inputs);
  assert.equal((await predict.run(single.ctx)).status, 'done');
  for (const c of pairs.cases as Array<{ prediction: string }>) {
    assert.deepEqual(fs.readFileSync(path.join(single.ctx.outs.predictions!, c.prediction)), fs.readFileSync(path.join(out, c.prediction)), c.prediction);
  }

  const panels = fs.readdirSync(ctx.outs.panels!).sort();
  assert.deepEqual(panels, [`000_${valIds[0]}.png`, `001_${valIds[1]}.png`]);
  const panel = await sharp(path.join(ctx.outs.panels!, panels[0]!)).raw().toBuffer({ resolveWithObject: true });
  const source = await decodeMask(path.join(carvanaRoot, 'train_masks', `${valIds[0]}_mask.gif`));
  const { width, height } = source.mask;
  assert.deepEqual([panel.info.width, panel.info.height], [3 * width + 2 * PANEL_GAP, height + LEGEND_HEIGHT]);
  // Where the label has car, the label tile is the photo blended 50% with green.
  const photo = await decodeRgb(path.join(carvanaRoot, 'train', `${valIds[0]}.jpg`));
  const carPixel = source.mask.data.findIndex((v) => v === 255);
  assert.ok(carPixel >= 0);
  const [py, px] = [Math.floor(carPixel / width), carPixel % width];
  const channels = panel.info.channels;
  const at = (x: number, y: number): number[] => Array.from(panel.data.subarray((y * panel.info.width + x) * channels, (y * panel.info.width + x) * channels + 3));
  const bg = Array.from(photo.data.subarray(carPixel * 3, carPixel * 3 + 3));
  assert.deepEqual(at(width + PANEL_GAP + px, py), [Math.round(bg[0]! / 2), Math.round((bg[1]! + 255) / 2), Math.round(bg[2]! / 2)]);
  assert.deepEqual(at(px, py), bg, 'the input tile is the photo');

  const evaluation = stageContext(evaluate, { regions: null, threshold: null, spacing_2d: [1, 1] }, { predictions: out });
  assert.equal((await evaluate.run(evaluation.ctx)).status, 'done');
  const metrics = JSON.parse(fs.readFileSync(evaluation.ctx.outs.metrics!, 'utf8'));
  assert.equal(metrics.cases.evaluated, 3);
  assert.ok(metrics.dice >= 0 && metrics.dice <= 1);
});

test('predict refuses a model whose input shape does not match the transform', async () => {
  await initBackend('cpu');
  const dir = makeTempDir('flow-predict-bad-');
  const { data, ids } = await carvanaRecords(dir, 1);
  const model = buildUNet({ inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: false, seed: 3 });
  await saveModelToDir(model, path.join(dir, 'model'));
  model.dispose();
  fs.writeFileSync(path.join(dir, 'transform.json'), JSON.stringify({
    dataset: 'carvana', labels: CARVANA_LABELS, size: [32, 32], channels: 3, resize: { image: 'linear', mask: 'nearest' }, normalize: { mode: 'none', mean: [0, 0, 0], std: [1, 1, 1] },
  }));
  fs.writeFileSync(path.join(dir, 'split.json'), JSON.stringify({ train: [], val: ids, trainIds: [], valIds: ids }));
  const params: PredictParams = { backend: 'cpu', batch_size: 2, subset: 'val', panels: 0, panel_width: 512 };
  const { ctx } = stageContext(predict, params, {
    model: path.join(dir, 'model'), data, split: path.join(dir, 'split.json'), transform: path.join(dir, 'transform.json'),
  });
  await assert.rejects(predict.run(ctx), /prepares inputs of shape \[32, 32, 3\] but the model .* expects \[16, 16, 3\]/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import exportStage, { type ExportParams } from '../../stages/export/index.js';
import { FLOW_MODEL_JSON, probeDifference, probeInput, readFlowModel } from '../../lib/contracts/flow-model.js';
import { baseName } from '../../stages/export/plots.js';
import { getTf, initBackend } from '../../lib/tf/backend.js';
import { loadModelFromDir, saveModelToDir } from '../../lib/tf/model-io.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';


test('export saves a model that reloads with identical predictions, a probe, and curve plots', async () => {
  await initBackend('cpu');
  const tf = getTf();
  const dir = makeTempDir('flow-export-');
  const model = buildUNet({ inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 7 });
  const trained = path.join(dir, 'trained');
  await saveModelToDir(model, trained);
  const curvesDir = path.join(dir, 'curves');
  fs.mkdirSync(curvesDir);
  fs.writeFileSync(path.join(curvesDir, 'curves.json'), JSON.stringify({
    epochs: [1, 2, 3],
    series: {
      loss: { split: 'train', values: [0.9, 0.6, 0.5] },
      val_loss: { split: 'val', values: [1.0, 0.7, 0.65] },
      dice: { split: 'train', values: [0.3, 0.6, 0.7] },
      val_dice: { split: 'val', values: [0.25, null, 0.66] },
      lr: { split: 'train', values: [1e-3, 1e-4, 1e-5] },
    },
  }));
  const transformFile = path.join(dir, 'transform.json');
  fs.writeFileSync(transformFile, JSON.stringify({ dataset: 'carvana', size: [16, 16], channels: 3 }));

  const params: ExportParams = { backend: 'cpu', probe_seed: 11 };
  const { ctx } = stageContext(exportStage, params, { model: trained, curves: curvesDir, transform: transformFile });
  assert.equal((await exportStage.run(ctx)).status, 'done');

  const reloaded = await loadModelFromDir(ctx.outs.model!);
  const x = tf.tensor(probeInput(3, [2, 16, 16, 3]), [2, 16, 16, 3]);
  const before = (model.predict(x) as ReturnType<typeof tf.tensor>).dataSync();
  const after = (reloaded.predict(x) as ReturnType<typeof tf.tensor>).dataSync();
  assert.deepEqual(Array.from(after), Array.from(before), 'the reloaded model predicts exactly as the trained one');

  const flowModel = await readFlowModel(ctx.outs.model!);
  assert.deepEqual(flowModel.inputShape, [16, 16, 3]);
  assert.deepEqual(flowModel.outputShape, [16, 16, 1]);
  assert.equal(flowModel.classes, 1);
  assert.equal(flowModel.activation, 'sigmoid');
  assert.equal(flowModel.transform.dataset, 'carvana');
  assert.equal(probeDifference(reloaded, flowModel).maxAbsDiff, 0);
  // A model with other weights fails the probe.
  const other = buildUNet({ inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 8 });
  assert.ok(probeDifference(other, flowModel).maxAbsDiff > 1e-4);
  assert.ok(fs.existsSync(path.join(ctx.outs.model!, FLOW_MODEL_JSON)));

  for (const name of ['loss', 'dice', 'lr']) {
    const meta = await sharp(path.join(ctx.outs.plots!, `${name}.png`)).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(fs.readFileSync(path.join(ctx.outs.plots!, `${name}.svg`), 'utf8').startsWith('<svg'));
  }
  assert.deepEqual(fs.readdirSync(ctx.outs.plots!).sort(), ['dice.png', 'dice.svg', 'loss.png', 'loss.svg', 'lr.png', 'lr.svg']);
  x.dispose();
  model.dispose();
  reloaded.dispose();
  other.dispose();
});

test('curve names group by quantity; bad curves are refused with the file named', async () => {
  assert.equal(baseName('val_loss'), 'loss');
  assert.equal(baseName('dice/train'), 'dice');
  assert.equal(baseName('lr'), 'lr');
  await initBackend('cpu');
  const dir = makeTempDir('flow-export-bad-');
  fs.writeFileSync(path.join(dir, 'curves.json'), JSON.stringify({ epochs: [1, 2], series: { loss: { split: 'train', values: [1] } } }));
  fs.writeFileSync(path.join(dir, 'transform.json'), '{}');
  const badParams: ExportParams = { backend: 'cpu', probe_seed: 1 };
  const { ctx } = stageContext(exportStage, badParams, { model: dir, curves: dir, transform: path.join(dir, 'transform.json') });
  await assert.rejects(exportStage.run(ctx), /curves\.json: series "loss" must have one value per epoch \(2\), got 1/);
});

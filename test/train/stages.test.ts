// The hparams, train and train.log stages end to end on real files: tensor datasets written by
// TensorDatasetWriter, a U-Net saved by model-io; a short training reduces the loss, an interrupted stage
// resumes, and train.log turns metrics.jsonl into curves.json + history.csv.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { JsonObject } from '../../engine/stage.js';
import { initBackend } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { saveModelToDir, loadModelFromDir } from '../../lib/tf/model-io.js';
import { TensorDatasetWriter } from '../../lib/tensors/dataset.js';
import hparamsStage from '../../stages/hparams/index.js';
import trainStage from '../../stages/train/index.js';
import trainLogStage, { type Curves } from '../../stages/train-log/index.js';
import { decodeHParamsPluginData, readEvents, scalarsByTag } from '../../lib/tensorboard/index.js';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { syntheticData } from './synthetic.js';
import type { TrainData } from '../../lib/train/loop.js';

await initBackend('wasm');
const SIZE = 16;

async function writeDataset(dir: string, data: TrainData, classes: number): Promise<string> {
  const writer = await TensorDatasetWriter.create(dir, {
    x: { shape: [SIZE, SIZE, 1], dtype: 'float32' },
    y: { shape: [SIZE, SIZE, 1], dtype: 'uint8' },
    classes,
  });
  const pixels = SIZE * SIZE;
  for (let i = 0; i < data.count; i++) {
    await writer.add({ id: `s${i}`, x: data.x.slice(i * pixels, (i + 1) * pixels), y: data.y.slice(i * pixels, (i + 1) * pixels), info: {} });
  }
  await writer.close();
  return dir;
}

async function fixtures(classes: number) {
  const root = makeTempDir();
  const train = await writeDataset(path.join(root, 'train'), syntheticData(24, SIZE, 1, classes, 31), classes);
  const val = await writeDataset(path.join(root, 'val'), syntheticData(6, SIZE, 1, classes, 32), classes);
  const modelDir = path.join(root, 'model');
  const model = buildUNet({ inputShape: [SIZE, SIZE, 1], classes, filters: 4, depth: 2, batchNorm: true, seed: 5 });
  await saveModelToDir(model, modelDir);
  model.dispose();
  return { root, train, val, modelDir };
}

async function hparamsFile(root: string, params: JsonObject): Promise<string> {
  const { ctx } = stageContext(hparamsStage, params as never, {}, { outDir: path.join(root, 'hp') });
  assert.equal((await hparamsStage.run(ctx)).status, 'done');
  return ctx.outs.hparams!;
}

test('train + train.log: a short binary training reduces the loss and writes model, metrics, summary, curves', async () => {
  const f = await fixtures(1);
  const hp = await hparamsFile(f.root, { epochs: 3, batch_size: 4, lr: 0.01, workers: 1, checkpoint_every_steps: 4, backend: 'wasm' });
  const run = stageContext(trainStage, { progress_seconds: 10, tensorboard_panels: 2 }, { train: f.train, val: f.val, model: f.modelDir, hparams: hp }, { outDir: path.join(f.root, 'run') });
  const outcome = await trainStage.run(run.ctx);
  assert.equal(outcome.status, 'done');
  assert.equal(run.env.backend, 'wasm');
  const lines = fs.readFileSync(run.ctx.outs.metrics!, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const epochs = lines.filter((line) => line.type === 'epoch');
  assert.equal(lines.filter((line) => line.type === 'step').length, 18);
  assert.equal(epochs.length, 3);
  assert.ok(epochs[2].loss < epochs[0].loss, `loss ${epochs.map((line) => line.loss)}`);
  for (const key of ['loss', 'val_loss', 'val_dice', 'dice', 'lr', 'seconds']) assert.equal(typeof epochs[0][key], 'number', key);
  const summary = JSON.parse(fs.readFileSync(run.ctx.outs.summary!, 'utf8'));
  assert.equal(summary.epochs_run, 3);
  assert.equal(summary.backend, 'wasm');
  assert.equal(summary.best_metric, 'val_dice');
  assert.equal(summary.best_value, Math.max(...epochs.map((line) => line.val_dice)));
  const reloaded = await loadModelFromDir(run.ctx.outs.model!);
  assert.equal(reloaded.layers.length > 5, true);
  reloaded.dispose();

  const log = stageContext(trainLogStage, {}, { metrics: run.ctx.outs.metrics! }, { outDir: path.join(f.root, 'log') });
  assert.equal((await trainLogStage.run(log.ctx)).status, 'done');
  const curves = JSON.parse(fs.readFileSync(path.join(log.ctx.outs.curves!, 'curves.json'), 'utf8')) as Curves;
  assert.deepEqual(curves.epochs, [1, 2, 3]);
  assert.deepEqual(curves.series.loss, { split: 'train', values: epochs.map((line) => line.loss) });
  assert.deepEqual(curves.series.val_dice, { split: 'val', values: epochs.map((line) => line.val_dice) });
  assert.equal(curves.steps.loss.length, 18);
  const csv = fs.readFileSync(path.join(log.ctx.outs.curves!, 'history.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 4);
  assert.match(csv[0]!, /^epoch,loss,dice,lr,val_loss,val_dice$/);

  // The TensorBoard event file decodes to the logged scalars, with the HParams data and the panels.
  const [eventFile, ...others] = fs.readdirSync(run.ctx.outs.events!);
  assert.equal(others.length, 0);
  assert.match(eventFile!, /^events\.out\.tfevents\.\d{10}\./);
  const events = await readEvents(path.join(run.ctx.outs.events!, eventFile!));
  const scalars = scalarsByTag(events);
  const steps = lines.filter((line) => line.type === 'step');
  assert.deepEqual(scalars.get('step/loss')!.map((p) => [p.step, p.value]), steps.map((line) => [line.step, Math.fround(line.loss)]));
  assert.deepEqual(scalars.get('epoch/val_dice')!.map((p) => p.value), epochs.map((line) => Math.fround(line.val_dice)));
  assert.deepEqual(scalars.get('epoch/val_dice')!.map((p) => p.step), [6, 12, 18], 'epoch curves on the global step axis');
  assert.equal(scalars.get('final/best_val_dice')![0]!.value, Math.fround(summary.best_value));
  const wallTimes = scalars.get('step/loss')!.map((p) => p.wallTime);
  assert.ok(wallTimes.every((t, i) => i === 0 || t >= wallTimes[i - 1]!), 'wall times increase');
  const values = events.flatMap((e) => e.summary?.value ?? []);
  const start = decodeHParamsPluginData(values.find((v) => v.tag === '_hparams_/session_start_info')!.metadata!.plugin_data!.content!);
  assert.equal(start.session_start_info!.hparams!.lr!.number_value, 0.01);
  assert.equal(start.session_start_info!.hparams!['augment.hflip']!.bool_value, true);
  const images = values.filter((v) => v.image);
  assert.equal(images.length, 2);
  const png = images[0]!.image!.encoded_image_string!;
  assert.deepEqual(Buffer.from(png.subarray(1, 4)).toString(), 'PNG');
  assert.deepEqual([Buffer.from(png).readUInt32BE(16), Buffer.from(png).readUInt32BE(20)], [images[0]!.image!.width, images[0]!.image!.height]);
});

test('train stage: interrupted by the signal, then resumed from its checkpoint (multi-class, ce_dice)', async () => {
  const f = await fixtures(3);
  const hp = await hparamsFile(f.root, { epochs: 2, batch_size: 4, lr: 0.01, loss: 'ce_dice', workers: 1, backend: 'wasm' });
  const controller = new AbortController();
  controller.abort();
  const inputs = { train: f.train, val: f.val, model: f.modelDir, hparams: hp };
  const first = stageContext(trainStage, { progress_seconds: 10, tensorboard_panels: 2 }, inputs, { outDir: path.join(f.root, 'run'), signal: controller.signal });
  assert.equal((await trainStage.run(first.ctx)).status, 'interrupted');
  assert.ok(!fs.existsSync(first.ctx.outs.metrics!));
  const second = stageContext(trainStage, { progress_seconds: 10, tensorboard_panels: 2 }, inputs, { outDir: path.join(f.root, 'run') });
  assert.equal((await trainStage.run(second.ctx)).status, 'done');
  assert.ok(second.printed.some((line) => line.startsWith('resuming from checkpoint')), second.printed.join('\n'));
  const epoch = JSON.parse(fs.readFileSync(second.ctx.outs.metrics!, 'utf8').trim().split('\n').at(-1)!);
  for (const key of ['val_dice_1', 'val_dice_2', 'dice_1', 'dice_2']) assert.equal(typeof epoch[key], 'number', key);
  assert.equal(JSON.parse(fs.readFileSync(second.ctx.outs.summary!, 'utf8')).resumed_count, 1);
  const multiClass = await readEvents(path.join(second.ctx.outs.events!, fs.readdirSync(second.ctx.outs.events!)[0]!));
  assert.equal(multiClass.flatMap((e) => e.summary?.value ?? []).filter((v) => v.image).length, 2, 'multi-class panels');
  assert.ok(scalarsByTag(multiClass).has('epoch/val_dice_2'));
});

test('train stage refuses a loss that does not fit the dataset and a model of another input size', async () => {
  const f = await fixtures(1);
  const ce = await hparamsFile(f.root, { loss: 'ce', backend: 'wasm' });
  const bad = stageContext(trainStage, { progress_seconds: 10, tensorboard_panels: 2 }, { train: f.train, val: f.val, model: f.modelDir, hparams: ce }, { outDir: path.join(f.root, 'a') });
  await assert.rejects(trainStage.run(bad.ctx), /loss ce is for multi-class labels but the dataset is binary/);
  const otherModel = path.join(f.root, 'model32');
  const model = buildUNet({ inputShape: [32, 32, 1], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 5 });
  await saveModelToDir(model, otherModel);
  model.dispose();
  const hp = await hparamsFile(f.root, { backend: 'wasm' });
  const wrong = stageContext(trainStage, { progress_seconds: 10, tensorboard_panels: 2 }, { train: f.train, val: f.val, model: otherModel, hparams: hp }, { outDir: path.join(f.root, 'b') });
  await assert.rejects(trainStage.run(wrong.ctx), /takes inputs \[32,32,1\] but the training tensors are \[16,16,1\]/);
});

test('train.log names the file and line of a damaged metrics.jsonl', async () => {
  const root = makeTempDir();
  const file = path.join(root, 'metrics.jsonl');
  fs.writeFileSync(file, '{"type":"step","epoch":1,"step":1,"loss":1,"lr":0.1,"images_per_s":3}\n{"type":"epoch","epo\n');
  const log = stageContext(trainLogStage, {}, { metrics: file }, { outDir: root });
  await assert.rejects(trainLogStage.run(log.ctx), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: not JSON`));
});

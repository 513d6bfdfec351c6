// preprocess.2d on real TFRecord shards of the shipped sample, and the Carvana adapter replaying it:
// prepare must give exactly the tensor preprocess wrote; restore/write give 0/255 PNGs at the original size.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import stage, { type Preprocess2dParams } from '../../stages/preprocess-2d/index.js';
import { ingestCarvana, defaultCarvanaIngestParams, type CarvanaIndex } from '../../lib/datasets/carvana/ingest.js';
import { loadTensorDataset } from '../../lib/tensors/dataset.js';
import { readExamples } from '../../lib/tfrecord/spec.js';
import { carvanaAdapter, carvanaFeatureSpec, encodeCarvanaSample } from '../../lib/datasets/carvana/index.js';
import { encodeExample } from '../../lib/tfrecord/example.js';
import { decodeMask } from '../../lib/image/index.js';
import { parseTransform2d } from '../../lib/preprocess/image2d.js';
import type { JsonObject } from '../../engine/stage.js';
import type { SplitFile } from '../../lib/preprocess/split.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { writeCarvanaShards } from './records.js';

const sampleRoot = path.join(samplesDir, 'carvana');
const size: [number, number] = [64, 96];
let index: CarvanaIndex;
let shardsDir: string;

before(async () => {
  index = (await ingestCarvana(sampleRoot, defaultCarvanaIngestParams)).index;
  shardsDir = makeTempDir('flow-carvana-shards-');
  await writeCarvanaShards(sampleRoot, index.samples, shardsDir);
});

async function runPreprocess(params: Partial<Preprocess2dParams>, dataDir = shardsDir) {
  const run = stageContext<Preprocess2dParams>(stage, { size, val_fraction: 0.25, seed: 42, normalize: 'dataset', ...params }, { data: dataDir });
  const outcome = await stage.run(run.ctx);
  return { outcome, run };
}

test('preprocess.2d: split by car, x normalised with the train split statistics, y binary, transform.json replayable', async () => {
  const { outcome, run } = await runPreprocess({});
  assert.equal(outcome.status, 'done');
  const split = JSON.parse(fs.readFileSync(run.ctx.outs.split!, 'utf8')) as SplitFile;
  assert.equal(split.val.length, 6);
  assert.equal(split.train.length, 18);
  assert.equal(split.trainIds.length + split.valIds.length, 96);
  const train = await loadTensorDataset(run.ctx.outs.train!);
  const val = await loadTensorDataset(run.ctx.outs.val!);
  assert.deepEqual(train.spec.x.shape, [64, 96, 3]);
  assert.deepEqual(train.spec.y, { shape: [64, 96, 1], dtype: 'uint8' });
  assert.equal(train.spec.classes, 1);
  assert.deepEqual([...train.ids].sort(), split.trainIds);
  assert.deepEqual([...val.ids].sort(), split.valIds);
  const trainCars = new Set(train.info.map((info) => info.group as string));
  for (const info of val.info) assert.ok(!trainCars.has(info.group as string), `car ${info.group} on both sides`);

  // Normalised with the train split's own statistics: per-channel mean 0, std 1 over the train tensors.
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    let squares = 0;
    const n = train.x.length / 3;
    for (let i = c; i < train.x.length; i += 3) {
      sum += train.x[i]!;
      squares += train.x[i]! * train.x[i]!;
    }
    assert.ok(Math.abs(sum / n) < 1e-3, `channel ${c} mean ${sum / n}`);
    assert.ok(Math.abs(Math.sqrt(squares / n) - 1) < 1e-3, `channel ${c} std ${Math.sqrt(squares / n)}`);
  }
  assert.deepEqual(new Set(train.y), new Set([0, 1]));
  const carFraction = train.y.reduce((a, b) => a + b, 0) / train.y.length;
  assert.ok(carFraction > 0.1 && carFraction < 0.5, `car fraction ${carFraction}`);

  const transform = parseTransform2d(JSON.parse(fs.readFileSync(run.ctx.outs.transform!, 'utf8')), 'transform.json');
  assert.deepEqual(transform.size, size);
  assert.equal(transform.normalize.mode, 'dataset');
  assert.equal(train.info[0]!.height, 160);
  assert.equal(train.info[0]!.width, 240);
});

test('a different seed gives a different car split; imagenet/none use fixed statistics', async () => {
  const other = await runPreprocess({ seed: 7, normalize: 'imagenet' });
  const split = JSON.parse(fs.readFileSync(other.run.ctx.outs.split!, 'utf8')) as SplitFile;
  const first = JSON.parse(fs.readFileSync((await runPreprocess({ normalize: 'none' })).run.ctx.outs.split!, 'utf8')) as SplitFile;
  assert.notDeepEqual(split.val, first.val);
  const transform = JSON.parse(fs.readFileSync(other.run.ctx.outs.transform!, 'utf8')) as JsonObject;
  assert.deepEqual((transform.normalize as JsonObject).mean, [0.485, 0.456, 0.406]);
});

test('adapter: prepare reproduces the preprocess tensor exactly; restore and write give a 0/255 PNG at 240x160', async () => {
  const { run } = await runPreprocess({});
  const transform = JSON.parse(fs.readFileSync(run.ctx.outs.transform!, 'utf8')) as JsonObject;
  const val = await loadTensorDataset(run.ctx.outs.val!);
  const xSize = 64 * 96 * 3;
  const wanted = new Set(val.ids.slice(0, 3));
  let checked = 0;
  const outDir = makeTempDir('flow-carvana-pred-');
  for await (const view of readExamples(shardsDir)) {
    const id = new TextDecoder().decode((view.features.id as { value: Uint8Array[] }).value[0]);
    if (!wanted.has(id)) continue;
    const at = val.ids.indexOf(id);
    const prepared = await carvanaAdapter.prepare(view.features, transform);
    assert.deepEqual(prepared.itemShape, [64, 96, 3]);
    assert.equal(prepared.count, 1);
    assert.ok(Buffer.from(prepared.x.buffer, prepared.x.byteOffset, prepared.x.byteLength).equals(Buffer.from(val.x.buffer, at * xSize * 4, xSize * 4)), `${id}: prepare differs from preprocess.2d`);
    assert.deepEqual(prepared.label!.shape, [160, 240]);

    // Feed the preprocessed mask back as "probabilities": restore must land close to the original mask.
    const probabilities = Float32Array.from(val.y.subarray(at * 64 * 96, (at + 1) * 64 * 96), (v) => (v === 1 ? 0.9 : 0.1));
    const restored = await carvanaAdapter.restore(probabilities, 1, prepared, transform);
    assert.deepEqual(restored.shape, [160, 240]);
    let both = 0;
    let sum = 0;
    for (let i = 0; i < restored.data.length; i++) {
      assert.ok(restored.data[i] === 0 || restored.data[i] === 255);
      const a = restored.data[i] === 255 ? 1 : 0;
      const b = prepared.label!.data[i] === 255 ? 1 : 0;
      both += a * b;
      sum += a + b;
    }
    assert.ok((2 * both) / sum > 0.95, `${id}: Dice of restored vs original mask ${(2 * both) / sum}`);

    const file = path.join(outDir, `${id}${carvanaAdapter.extension}`);
    await carvanaAdapter.write(restored, prepared, file);
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.channels, 1);
    assert.deepEqual([meta.width, meta.height], [240, 160]);
    const reread = await decodeMask(file);
    assert.ok(Buffer.from(reread.mask.data).equals(Buffer.from(restored.data)));

    const background = await carvanaAdapter.background(prepared, null);
    assert.deepEqual([background.width, background.height, background.data.length], [240, 160, 240 * 160 * 3]);
    checked++;
  }
  assert.equal(checked, 3);
});

test('bad records: a BraTS shards folder and a record without mask are refused, naming the file and record', async () => {
  const bratsLike = makeTempDir('flow-carvana-bratsrec-');
  await writeCarvanaShards(sampleRoot, index.samples.slice(0, 2), bratsLike);
  const specFile = path.join(bratsLike, 'spec.json');
  fs.writeFileSync(specFile, fs.readFileSync(specFile, 'utf8').replace('"dataset": "carvana"', '"dataset": "brats"'));
  await assert.rejects(runPreprocess({}, bratsLike), /holds brats volume records; preprocess\.2d reads 2D picture\/mask records/);

  const noMask = makeTempDir('flow-carvana-nomask-');
  await writeCarvanaShards(sampleRoot, index.samples.slice(0, 3), noMask, {
    edit: (features, at) => {
      if (at === 2) for (const name of ['mask/encoded', 'mask/height', 'mask/width']) delete features[name];
    },
  });
  const { ctx: run } = stageContext(stage, { size, val_fraction: 0.25, seed: 42, normalize: "dataset" as const }, { data: noMask });
  await assert.rejects(stage.run(run), /part-00000-of-00001\.tfrecord\.gz record 2 \(.*\): no mask\/encoded/);
  assert.equal(fs.existsSync(path.join(run.outs.train!, 'spec.json')), false, 'no complete-looking train dataset after a failure');
});

test('encodeCarvanaSample builds the same Example bytes and spec as tfrecord.write', async () => {
  const dir = makeTempDir('flow-carvana-same-');
  await writeCarvanaShards(sampleRoot, index.samples.slice(0, 2), dir);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'spec.json'), 'utf8')) as { features: Record<string, unknown> };
  assert.deepEqual(spec.features, carvanaFeatureSpec('jpeg'));
  let at = 0;
  for await (const view of readExamples(dir)) {
    const ours = encodeExample(await encodeCarvanaSample(sampleRoot, index.samples[at++]!));
    assert.ok(Buffer.from(ours).equals(Buffer.from(encodeExample(view.features))));
  }
  assert.equal(at, 2);
});

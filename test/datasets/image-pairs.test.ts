// Generic 2D layouts end to end: generated ISIC 2018 Task 1 and Oxford-IIIT Pet folders (with their real
// downloads' quirks) → `flow init` → `flow run` on tiny settings. Predictions must come back as PNGs at each
// picture's own size, in the masks' own values, named after the picture's stem; metrics.json must equal a
// Dice recomputed here from those PNGs and the raw masks. Bad inputs give messages naming the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { makeIsicSample, makePetSample } from '../../scripts/make-samples/image-pairs.js';
import { ingestImagePairs, type ImagePairsIngestParams } from '../../lib/datasets/image-pairs/ingest.js';
import { flow, latestRunDir, makeFlowHome, readJsonFile, setArgs } from '../e2e/helpers.js';
import { makeTempDir } from '../helpers/paths.js';
import { diceOfValue } from './helpers.js';

const TINY = ['train.epochs=1', 'train.input_size=[32,32]', 'train.filters=4'];

async function grey(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}


async function initAndRun(root: string, name: string): Promise<{ runDir: string; pipeline: string }> {
  const home = makeFlowHome('flow-pairs-');
  const pipeline = path.join(home.dir, `${name}.yaml`);
  const init = await flow(home, ['init', root, '-o', pipeline]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /wrote /);
  const run = await flow(home, ['run', pipeline, ...setArgs(TINY)]);
  assert.equal(run.code, 0, run.stderr);
  return { runDir: latestRunDir(home, path.basename(root)), pipeline };
}

/** Checks predictions against the raw masks and metrics.json against a Dice recomputed here. */
async function checkPredictions(runDir: string, root: string, maskOf: (stem: string) => string, scored: Record<string, number>): Promise<void> {
  const predDir = path.join(runDir, 'stages', 'predict', 'predictions', 'pred');
  const files = fs.readdirSync(predDir).sort();
  assert.ok(files.length > 0);
  const metrics = readJsonFile<{ regions: Record<string, { per_case: { id: string; dice: number }[] }> }>(path.join(runDir, 'metrics.json'));
  for (const file of files) {
    const stem = file.replace(/\.png$/, '');
    const prediction = await grey(path.join(predDir, file));
    const truth = await grey(path.join(root, maskOf(stem)));
    assert.deepEqual([prediction.width, prediction.height], [truth.width, truth.height], `${file} has the source size`);
    const allowed = new Set(Object.values(scored).concat([...new Set(truth.data)]));
    for (const v of new Set(prediction.data)) assert.ok(allowed.has(v), `${file}: value ${v} is one of the dataset's own values`);
    for (const [region, value] of Object.entries(scored)) {
      const reported = metrics.regions[region]!.per_case.find((c) => c.id === stem)!;
      assert.ok(Math.abs(reported.dice - diceOfValue(prediction.data, truth.data, value)) < 1e-9, `${stem} ${region}: ${reported.dice}`);
    }
  }
}

test('ISIC 2018 Task 1 layout: init finds the pairs, run gives 0/255 PNGs at each size and the Dice recomputed here', async () => {
  const root = path.join(makeTempDir(), 'isic2018');
  await makeIsicSample(root, 10);
  const { runDir, pipeline } = await initAndRun(root, 'isic');
  const yaml = fs.readFileSync(pipeline, 'utf8');
  assert.match(yaml, /images: "ISIC2018_Task1-2_Training_Input\/\*\.jpg"/);
  assert.match(yaml, /masks: "ISIC2018_Task1_Training_GroundTruth\/\{stem\}_segmentation\.png"/);
  assert.match(yaml, /loss: bce_dice +# two label values/);
  const report = readJsonFile<{ skipped: { path: string; reason: string }[] }>(path.join(runDir, 'stages', 'ingest', 'report', 'report.json'));
  assert.ok(report.skipped.some((s) => s.path.endsWith('LICENSE.txt') && /not described by the layout/.test(s.reason)), 'LICENSE.txt is skipped with a line');
  await checkPredictions(runDir, root, (stem) => `ISIC2018_Task1_Training_GroundTruth/${stem}_segmentation.png`, { class_255: 255 });
});

test('Oxford-IIIT Pet trimaps: 3 classes with background 2, the official test list predicted, every class scored', async () => {
  const root = path.join(makeTempDir(), 'pets');
  await makePetSample(root, 4);
  const { runDir } = await initAndRun(root, 'pets');
  const split = readJsonFile<{ test: string[]; train: string[]; val: string[] }>(path.join(runDir, 'stages', 'preprocess', 'split'));
  const test = fs.readFileSync(path.join(root, 'annotations', 'test.txt'), 'utf8').trim().split('\n').map((l) => l.split(' ')[0]!);
  assert.deepEqual(split.test, [...test].sort());
  assert.ok(!split.train.some((g) => test.includes(g)) && !split.val.some((g) => test.includes(g)), 'test cases are never trained on');
  const predicted = fs.readdirSync(path.join(runDir, 'stages', 'predict', 'predictions', 'pred')).map((f) => f.replace(/\.png$/, '')).sort();
  assert.deepEqual(predicted, [...test].sort());
  await checkPredictions(runDir, root, (stem) => `annotations/trimaps/${stem}.png`, { class_1: 1, class_3: 3 });
  const metrics = readJsonFile<Record<string, unknown>>(path.join(runDir, 'metrics.json'));
  assert.equal(typeof metrics.mean_dice, 'number');
});

function pairsParams(over: Partial<ImagePairsIngestParams> = {}): ImagePairsIngestParams {
  return {
    images: 'ISIC2018_Task1-2_Training_Input/*.jpg', masks: 'ISIC2018_Task1_Training_GroundTruth/{stem}_segmentation.png',
    labels: { 0: 'background', 255: 'lesion' }, background: null, ignore: [], regions: null, group: null, split_file: null, strict: false, ...over,
  };
}

test('bad inputs name the file: unknown layout, image without mask, mask of another size, label value outside the map', async () => {
  const home = makeFlowHome('flow-pairs-bad-');
  const unknown = makeTempDir();
  fs.writeFileSync(path.join(unknown, 'notes.txt'), 'hello');
  const init = await flow(home, ['init', unknown]);
  assert.equal(init.code, 1);
  assert.match(init.stderr, /cannot tell which layout this is\. Found: notes\.txt\. Known layouts: nnU-Net v2/);

  const root = path.join(makeTempDir(), 'isic');
  await makeIsicSample(root, 4);
  const truth = path.join(root, 'ISIC2018_Task1_Training_GroundTruth');
  fs.rmSync(path.join(truth, 'ISIC_0000001_segmentation.png'));
  await sharp(Buffer.from(new Uint8Array(81)), { raw: { width: 9, height: 9, channels: 1 } }).png().toFile(path.join(truth, 'ISIC_0000004_segmentation.png'));
  await sharp(Buffer.from(new Uint8Array(72 * 54).fill(128)), { raw: { width: 72, height: 54, channels: 1 } }).png().toFile(path.join(truth, 'ISIC_0000007_segmentation.png'));
  const result = (await ingestImagePairs(root, pairsParams(), { paramPath: 'stages.ingest.params' }))!;
  const reasons = Object.fromEntries(result.index.skipped.map((s) => [s.path, s.reason]));
  assert.deepEqual(result.index.samples.map((s) => s.id), ['ISIC_0000010']);
  assert.match(reasons['ISIC2018_Task1-2_Training_Input/ISIC_0000001.jpg']!, /no mask: expected ISIC2018_Task1_Training_GroundTruth\/ISIC_0000001_segmentation\.png/);
  assert.match(reasons['ISIC2018_Task1_Training_GroundTruth/ISIC_0000004_segmentation.png']!, /mask is 9x9 but its image .*ISIC_0000004\.jpg is 56x56/);
  assert.match(reasons['ISIC2018_Task1_Training_GroundTruth/ISIC_0000007_segmentation.png']!, /label value\(s\) 128 \(3888 px\/voxels\) not in the label map \{0, 255\}; add them to stages\.ingest\.params\.labels/);
  await assert.rejects(ingestImagePairs(root, pairsParams({ strict: true }), { paramPath: 'stages.ingest.params' }), /\(strict\): .*ISIC_0000001\.jpg: no mask.*set stages\.ingest\.params\.strict: false/);
});

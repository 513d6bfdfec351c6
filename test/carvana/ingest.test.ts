// carvana.ingest on the shipped sample and on real broken files (truncated JPEG, mis-sized / JPEG-saved /
// unreadable masks, unpaired files, an empty root, a BraTS layout), run through the stage as the engine would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import stage from '../../stages/carvana-ingest/index.js';
import type { CarvanaIndex, CarvanaIngestParams, CarvanaReport } from '../../lib/datasets/carvana/ingest.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { copyCarvanaSample } from '../helpers/samples.js';

const sampleRoot = path.join(samplesDir, 'carvana');
const defaults: CarvanaIngestParams = { strict: false, images_dir: 'train', masks_dir: 'train_masks' };

async function runIngest(root: string, params: CarvanaIngestParams = defaults) {
  const run = stageContext(stage, params, { root });
  const outcome = await stage.run(run.ctx);
  const index = JSON.parse(fs.readFileSync(run.ctx.outs.index!, 'utf8')) as CarvanaIndex;
  const report = JSON.parse(fs.readFileSync(path.join(run.ctx.outs.report!, 'report.json'), 'utf8')) as CarvanaReport;
  const text = fs.readFileSync(path.join(run.ctx.outs.report!, 'report.txt'), 'utf8');
  return { outcome, index, report, text, run };
}

/** Runs strict ingest expecting an error; checks that no index.json was left behind. */
async function expectStrictFailure(root: string, pattern: RegExp): Promise<void> {
  const run = stageContext(stage, { ...defaults, strict: true }, { root });
  await assert.rejects(stage.run(run.ctx), pattern);
  assert.equal(fs.existsSync(run.ctx.outs.index!), false, 'a failed strict ingest must not leave index.json');
}

test('the shipped sample: 96 pairs of 24 cars, 4 angles each, 240x160, masks exactly 0/255', async () => {
  const { outcome, index, report, text } = await runIngest(sampleRoot);
  assert.equal(outcome.status, 'done');
  assert.equal(index.dataset, 'carvana');
  assert.equal(index.root, path.resolve(sampleRoot));
  assert.equal(index.samples.length, 96);
  assert.deepEqual(index.skipped, []);
  assert.equal(report.counts.cars, 24);
  assert.deepEqual(report.anglesPerCarHistogram, { '4': 24 });
  assert.deepEqual(report.imageSizes, { '240x160': 96 });
  assert.deepEqual(report.maskFormats, { gif: 96 });
  assert.deepEqual(Object.keys(report.maskValueFrequencies), ['0', '255']);
  assert.equal(report.maskValueFrequencies['0']! + report.maskValueFrequencies['255']!, 96 * 240 * 160);
  assert.ok(report.carPixelFraction.min > 0.05 && report.carPixelFraction.max < 0.6, JSON.stringify(report.carPixelFraction));
  for (const sample of index.samples) {
    assert.match(sample.id, /^[0-9a-f]{12}_\d\d$/);
    assert.equal(sample.group, sample.id.slice(0, 12));
    assert.equal(sample.image, `train/${sample.id}.jpg`);
    assert.equal(sample.label, `train_masks/${sample.id}_mask.gif`);
  }
  for (let c = 0; c < 3; c++) assert.ok(report.intensity.std[c]! > 10 && report.intensity.max[c]! > report.intensity.min[c]!);
  assert.match(text, /96 image\/mask pairs of 24 cars/);
});

test('a truncated JPEG is skipped as broken, naming the file; strict makes it an error', async () => {
  const { root, stems } = copyCarvanaSample(3);
  const file = path.join(root, 'train', `${stems[1]}.jpg`);
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const { index } = await runIngest(root);
  assert.equal(index.samples.length, 2);
  assert.equal(index.skipped.length, 1);
  assert.equal(index.skipped[0]!.path, `train/${stems[1]}.jpg`);
  assert.match(index.skipped[0]!.reason, /broken image/);
  await expectStrictFailure(root, new RegExp(`${stems[1]}\\.jpg: broken image`));
});

test('a mask of a different size than its image is skipped with both sizes; strict makes it an error', async () => {
  const { root, stems } = copyCarvanaSample(2);
  const maskFile = path.join(root, 'train_masks', `${stems[0]}_mask.gif`);
  const resized = await sharp(fs.readFileSync(maskFile)).resize(200, 150, { kernel: 'nearest' }).greyscale().gif().toBuffer();
  fs.writeFileSync(maskFile, resized);
  const { index } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), [stems[1]]);
  assert.equal(index.skipped[0]!.path, `train_masks/${stems[0]}_mask.gif`);
  assert.match(index.skipped[0]!.reason, /mask is 200x150 but its image .* is 240x160/);
  await expectStrictFailure(root, /_mask\.gif: mask is 200x150/);
});

test('a mask saved as JPEG (values other than 0/255) is accepted, thresholded and warned about', async () => {
  const { root, stems } = copyCarvanaSample(2);
  const gifFile = path.join(root, 'train_masks', `${stems[0]}_mask.gif`);
  const jpeg = await sharp(fs.readFileSync(gifFile)).greyscale().jpeg({ quality: 75 }).toBuffer();
  fs.rmSync(gifFile);
  fs.writeFileSync(path.join(root, 'train_masks', `${stems[0]}_mask.jpg`), jpeg);
  const { index, report, run } = await runIngest(root, { ...defaults, strict: true });
  assert.equal(index.samples.length, 2);
  assert.equal(index.samples[0]!.label, `train_masks/${stems[0]}_mask.jpg`);
  assert.equal(report.thresholdedMasks.length, 1);
  assert.ok(report.thresholdedMasks[0]!.pixels > 0);
  assert.match(report.warnings[0]!, new RegExp(`${stems[0]}_mask\\.jpg: \\d+ pixels have values other than 0/255.*thresholded`));
  assert.ok(Object.keys(report.maskValueFrequencies).length > 2);
  assert.ok(run.printed.some((line) => line.includes('warning')));
});

test('an image without mask and a mask without image are listed as unpaired; strict makes it an error', async () => {
  const { root, stems } = copyCarvanaSample(3);
  fs.rmSync(path.join(root, 'train_masks', `${stems[0]}_mask.gif`));
  fs.rmSync(path.join(root, 'train', `${stems[2]}.jpg`));
  const { index, report } = await runIngest(root);
  assert.deepEqual(index.samples.map((s) => s.id), [stems[1]]);
  const reasons = Object.fromEntries(index.skipped.map((s) => [s.path, s.reason]));
  assert.match(reasons[`train/${stems[0]}.jpg`]!, /no mask: expected train_masks\/.*_mask\.gif/);
  assert.match(reasons[`train_masks/${stems[2]}_mask.gif`]!, /no image/);
  assert.equal(report.counts.skipped, 2);
  await expectStrictFailure(root, new RegExp(`${stems[0]}\\.jpg: no mask`));
});

test('an unreadable GIF mask is skipped as broken', async () => {
  const { root, stems } = copyCarvanaSample(2);
  fs.writeFileSync(path.join(root, 'train_masks', `${stems[1]}_mask.gif`), Buffer.from('GIF89a this is not a gif'));
  const { index } = await runIngest(root);
  assert.equal(index.samples.length, 1);
  assert.match(index.skipped[0]!.reason, /broken mask/);
});

test('an empty root says which layout was expected and that the folder is empty', async () => {
  const root = makeTempDir('flow-carvana-empty-');
  const run = stageContext(stage, defaults, { root });
  await assert.rejects(stage.run(run.ctx), (error: Error) => {
    assert.match(error.message, new RegExp(`${root}.*no train/ folder`));
    assert.match(error.message, /expected the Carvana layout .*train\/<car>_<NN>\.jpg/);
    assert.match(error.message, /found an empty folder/);
    return true;
  });
  assert.equal(fs.existsSync(run.ctx.outs.index!), false);
});

test('a BraTS layout given to carvana.ingest is recognised and pointed at brats.ingest', async () => {
  const root = makeTempDir('flow-carvana-brats-');
  fs.mkdirSync(path.join(root, 'Training', 'HGG', 'P1'), { recursive: true });
  fs.mkdirSync(path.join(root, 'Validation'));
  const run = stageContext(stage, defaults, { root });
  await assert.rejects(stage.run(run.ctx), /found Training\/, Validation\/: this looks like a BraTS dataset; use the brats\.ingest stage/);
});

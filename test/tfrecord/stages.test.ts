// tfrecord.write and tfrecord.read as stages, on the shipped sample data (real JPEG, GIF and .nii.gz):
// contract features, sharding, spec.json, verification, and the bad inputs that must fail cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import type { StageKind } from '../../engine/stage.js';
import { stageContext } from '../helpers/stage-context.js';
import writeStage from '../../stages/tfrecord-write/index.js';
import readStage from '../../stages/tfrecord-read/index.js';
import type { TFRecordWriteParams } from '../../stages/tfrecord-write/convert.js';
import { readExamples, readRecordSpec } from '../../lib/tfrecord/spec.js';
import { getBytes, getInts, getString, getStrings, getFloats } from '../../lib/tfrecord/example.js';
import { decodeMask } from '../../lib/image/index.js';
import { readNifti } from '../../lib/nifti/read.js';
import { writeRecordsToFile } from '../../lib/tfrecord/writer.js';
import { encodeExample, bytesFeature } from '../../lib/tfrecord/example.js';
import { BRATS_LABELS } from '../../lib/datasets/brats/ingest.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';

async function runStage<P>(stage: StageKind<P>, params: P, inputs: Record<string, string>, outs: Record<string, string>) {
  const { ctx, printed } = stageContext(stage, params, inputs, { outs });
  const outcome = await stage.run(ctx);
  return { outcome, printed };
}

const carvanaRoot = path.join(samplesDir, 'carvana');
function carvanaIndex(dir: string, count: number, root = carvanaRoot): string {
  const images = fs.readdirSync(path.join(carvanaRoot, 'train')).sort().slice(0, count);
  const samples = images.map((name) => {
    const id = name.replace(/\.jpg$/, '');
    return { id, group: id.replace(/_\d+$/, ''), image: `train/${name}`, label: `train_masks/${id}_mask.gif` };
  });
  const file = path.join(dir, 'index.json');
  fs.writeFileSync(file, JSON.stringify({ dataset: 'carvana', root, labels: CARVANA_LABELS, samples, skipped: [], files: {} }));
  return file;
}

const params = (p: Partial<TFRecordWriteParams> = {}): TFRecordWriteParams => ({ shard_size: 64, shard_bytes: null, compression: 'none', ...p });

test('tfrecord.write (carvana) → tfrecord.read: contract features, shards, spec, verification', async () => {
  const dir = makeTempDir();
  const index = carvanaIndex(dir, 10);
  const shards = path.join(dir, 'shards');
  const { outcome } = await runStage(writeStage, params({ shard_size: 4, compression: 'gzip' }), { samples: index }, { shards });
  assert.equal(outcome.status, 'done');
  assert.deepEqual(fs.readdirSync(shards).sort(), [
    'part-00000-of-00003.tfrecord.gz',
    'part-00001-of-00003.tfrecord.gz',
    'part-00002-of-00003.tfrecord.gz',
    'spec.json',
  ]);
  const spec = await readRecordSpec(shards);
  assert.equal(spec.records, 10);
  assert.equal(spec.dataset, 'carvana');
  assert.deepEqual(spec.features['image/encoded'], { type: 'bytes', shape: [1], encoding: 'jpeg' });

  const data = path.join(dir, 'data');
  await runStage(readStage, {}, { records: shards }, { data });
  const verification = JSON.parse(fs.readFileSync(path.join(data, 'verification.json'), 'utf8'));
  assert.equal(verification.records, 10);
  assert.deepEqual(verification.shards.map((s: { records: number }) => s.records), [4, 4, 2]);
  // Hard links of the same bytes.
  assert.equal(fs.statSync(path.join(data, 'part-00000-of-00003.tfrecord.gz')).ino, fs.statSync(path.join(shards, 'part-00000-of-00003.tfrecord.gz')).ino);

  const first = fs.readdirSync(path.join(carvanaRoot, 'train')).sort()[0]!;
  let n = 0;
  for await (const ex of readExamples(data)) {
    if (n === 0) {
      const id = first.replace(/\.jpg$/, '');
      assert.equal(getString(ex.features, 'id'), id);
      assert.equal(getString(ex.features, 'image/format'), 'jpeg');
      // image/encoded is the original JPEG, byte for byte.
      assert.deepEqual(getBytes(ex.features, 'image/encoded'), new Uint8Array(fs.readFileSync(path.join(carvanaRoot, 'train', first))));
      const png = getBytes(ex.features, 'mask/encoded');
      const meta = await sharp(png).metadata();
      assert.equal(meta.format, 'png');
      assert.equal(meta.channels, 1);
      const { data: pixels } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      assert.ok(pixels.every((v) => v === 0 || v === 255));
      assert.ok(pixels.some((v) => v === 255) && pixels.some((v) => v === 0));
      const fromGif = await decodeMask(path.join(carvanaRoot, 'train_masks', `${id}_mask.gif`));
      assert.deepEqual(new Uint8Array(pixels), fromGif.mask.data);
      assert.deepEqual(getInts(ex.features, 'mask/width'), [meta.width]);
      assert.deepEqual(getInts(ex.features, 'image/height'), getInts(ex.features, 'mask/height'));
    }
    n++;
  }
  assert.equal(n, 10);
});

test('tfrecord.write (brats): volumes [M][Z][Y][X] float32, labels uint8, validation without label', async () => {
  const dir = makeTempDir();
  const root = path.join(samplesDir, 'brats');
  const patient = (subset: string, id: string, labelled: boolean) => {
    const base = subset === 'Validation' ? `Validation/${id}` : `Training/${subset}/${id}`;
    const images = Object.fromEntries(['flair', 't1', 't1ce', 't2'].map((m) => [m, `${base}/${id}_${m}.nii.gz`]));
    return { id, group: id, subset, images, label: labelled ? `${base}/${id}_seg.nii.gz` : null };
  };
  const samples = [patient('HGG', 'BraTS19_SYN_0001_1', true), patient('Validation', 'BraTS19_SYN_0101_1', false)];
  const index = path.join(dir, 'index.json');
  fs.writeFileSync(index, JSON.stringify({ dataset: 'brats', root, labels: BRATS_LABELS, samples, skipped: [], files: {} }));
  const shards = path.join(dir, 'shards');
  await runStage(writeStage, params({ compression: 'zlib' }), { samples: index }, { shards });
  assert.deepEqual(fs.readdirSync(shards).sort(), ['part-00000-of-00001.tfrecord.zz', 'spec.json']);
  const spec = await readRecordSpec(shards);
  assert.equal(spec.features['label/data']!.optional, true);

  const examples = [];
  for await (const ex of readExamples(shards)) examples.push(ex.features);
  assert.equal(examples.length, 2);
  const [hgg, val] = examples as [typeof examples[0], typeof examples[0]];
  const flair = await readNifti(path.join(root, samples[0]!.images.flair!));
  const t2 = await readNifti(path.join(root, samples[0]!.images.t2!));
  const seg = await readNifti(path.join(root, samples[0]!.label!));
  assert.deepEqual(getInts(hgg, 'volume/shape'), flair.dims.slice(0, 3));
  assert.deepEqual(getStrings(hgg, 'volume/modalities'), ['flair', 't1', 't1ce', 't2']);
  const raw = getBytes(hgg, 'volume/data');
  const voxels = flair.dims[0]! * flair.dims[1]! * flair.dims[2]!;
  assert.equal(raw.length, 4 * voxels * 4);
  const volume = new Float32Array(Uint8Array.from(raw).buffer);
  assert.deepEqual(volume.subarray(0, voxels), flair.data.subarray(0, voxels));
  assert.deepEqual(volume.subarray(3 * voxels), t2.data.subarray(0, voxels));
  assert.deepEqual(Array.from(getBytes(hgg, 'label/data')), Array.from(seg.data.subarray(0, voxels)));
  assert.deepEqual(Array.from(getFloats(hgg, 'volume/spacing')), flair.spacing.slice(0, 3).map(Math.fround));
  assert.deepEqual(Array.from(getFloats(hgg, 'volume/affine')), flair.affine.map(Math.fround));
  assert.equal(getString(val, 'subset'), 'Validation');
  assert.equal('label/data' in val, false);
});

test('a mask re-saved as JPEG is thresholded with a warning; a damaged image fails with no output left', async () => {
  const dir = makeTempDir();
  const root = path.join(dir, 'raw');
  fs.mkdirSync(path.join(root, 'train'), { recursive: true });
  fs.mkdirSync(path.join(root, 'train_masks'));
  const names = fs.readdirSync(path.join(carvanaRoot, 'train')).sort().slice(0, 2);
  for (const name of names) fs.copyFileSync(path.join(carvanaRoot, 'train', name), path.join(root, 'train', name));
  const id0 = names[0]!.replace('.jpg', '');
  const id1 = names[1]!.replace('.jpg', '');
  const gray = await decodeMask(path.join(carvanaRoot, 'train_masks', `${id0}_mask.gif`));
  await sharp(gray.mask.data, { raw: { width: gray.mask.width, height: gray.mask.height, channels: 1 } })
    .jpeg({ quality: 60 })
    .toFile(path.join(root, 'train_masks', `${id0}_mask.jpg`));
  fs.copyFileSync(path.join(carvanaRoot, 'train_masks', `${id1}_mask.gif`), path.join(root, 'train_masks', `${id1}_mask.gif`));
  const samples = [
    { id: id0, group: 'a', image: `train/${id0}.jpg`, label: `train_masks/${id0}_mask.jpg` },
    { id: id1, group: 'b', image: `train/${id1}.jpg`, label: `train_masks/${id1}_mask.gif` },
  ];
  const index = path.join(dir, 'index.json');
  fs.writeFileSync(index, JSON.stringify({ dataset: 'carvana', root, labels: CARVANA_LABELS, samples, skipped: [], files: {} }));
  const shards = path.join(dir, 'shards');
  const { printed } = await runStage(writeStage, params(), { samples: index }, { shards });
  assert.ok(printed.some((l) => /warning: .*_mask\.jpg: \d+ pixels were neither 0 nor 255.*thresholded \(> 127 is car\)/.test(l)), printed.join('\n'));

  // Damage the second JPEG's header: the stage fails naming it, and the output folder holds nothing complete.
  // (tfrecord.write stores the original bytes and reads only the header; ingest decodes every picture.)
  const jpeg = path.join(root, 'train', `${id1}.jpg`);
  fs.writeFileSync(jpeg, Buffer.concat([Buffer.from('not a jpeg'), fs.readFileSync(jpeg).subarray(10)]));
  const shards2 = path.join(dir, 'shards2');
  await assert.rejects(runStage(writeStage, params({ shard_size: 1 }), { samples: index }, { shards: shards2 }), (err: Error) => err.message.includes(jpeg));
  assert.deepEqual(fs.readdirSync(shards2), []);
});

test('tfrecord.read fails on a corrupt shard or a spec that does not match, leaving no verification.json', async () => {
  const dir = makeTempDir();
  const index = carvanaIndex(dir, 3);
  const shards = path.join(dir, 'shards');
  await runStage(writeStage, params({ shard_size: 2 }), { samples: index }, { shards });
  const specFile = path.join(shards, 'spec.json');
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));

  // A spec declaring a feature the records do not have.
  fs.writeFileSync(specFile, JSON.stringify({ ...spec, features: { ...spec.features, extra: { type: 'float', shape: [2] } } }));
  const data = path.join(dir, 'data');
  await assert.rejects(runStage(readStage, {}, { records: shards }, { data }), /part-00000-of-00002\.tfrecord: record 0 at byte 0: feature 'extra' is missing.*re-run tfrecord\.write/);
  assert.equal(fs.existsSync(path.join(data, 'verification.json')), false);

  // A spec with the wrong type and shape.
  const wrongType = { ...spec.features, 'image/height': { type: 'float', shape: [1] } };
  fs.writeFileSync(specFile, JSON.stringify({ ...spec, features: wrongType }));
  await assert.rejects(runStage(readStage, {}, { records: shards }, { data }), /feature 'image\/height' is a int64 list, spec\.json says float/);
  const wrongShape = { ...spec.features, 'image/height': { type: 'int64', shape: [2] } };
  fs.writeFileSync(specFile, JSON.stringify({ ...spec, features: wrongShape }));
  await assert.rejects(runStage(readStage, {}, { records: shards }, { data }), /feature 'image\/height' holds 1 values, spec\.json's shape \[2\] needs 2/);

  // Record counts that do not match.
  fs.writeFileSync(specFile, JSON.stringify({ ...spec, records: 4, shards: [{ ...spec.shards[0], records: 3 }, spec.shards[1]] }));
  await assert.rejects(runStage(readStage, {}, { records: shards }, { data }), /part-00000-of-00002\.tfrecord: 2 records but spec\.json lists 3/);

  // A flipped byte in the second shard's data.
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const second = path.join(shards, 'part-00001-of-00002.tfrecord');
  const bytes = fs.readFileSync(second);
  bytes[500]! ^= 0x10;
  fs.writeFileSync(second, bytes);
  await assert.rejects(runStage(readStage, {}, { records: shards }, { data }), /part-00001-of-00002\.tfrecord: record 0 at byte 0: data CRC mismatch/);

  // An Example with a feature the spec does not declare.
  await writeRecordsToFile(second, [encodeExample({ ...Object.fromEntries(Object.keys(spec.features).map((k) => [k, bytesFeature('x')])), stray: bytesFeature('y') })]);
  await assert.rejects(runStage(readStage, {}, { records: shards }, { data }), /record 0 at byte 0: feature 'image\/height' is a bytes list, spec\.json says int64/);
  assert.equal(fs.existsSync(path.join(data, 'verification.json')), false);
});

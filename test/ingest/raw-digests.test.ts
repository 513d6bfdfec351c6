// Raw-file content reaches the cache key: carvana.ingest and brats.ingest record each referenced file's size
// and xxhash128 in index.json, so a raw file changed under the same name changes index.json (and so every
// downstream key, which covers index.json's digest), while unchanged data gives a byte-identical index.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import carvanaIngest from '../../stages/carvana-ingest/index.js';
import bratsIngest from '../../stages/brats-ingest/index.js';
import { defaultCarvanaIngestParams, type CarvanaIndex } from '../../lib/datasets/carvana/ingest.js';
import { DEFAULT_LABEL_MAP, DEFAULT_MODALITIES, type BratsIndex } from '../../lib/datasets/brats/ingest.js';
import { hashFileContent } from '../../engine/hashing.js';
import type { StageKind } from '../../engine/stage.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import { copyCarvanaSample } from '../helpers/samples.js';

/** Runs an ingest stage; returns index.json's bytes, its engine content digest, and the parsed index. */
async function ingest<P, I>(stage: StageKind<P>, params: P, root: string): Promise<{ text: string; digest: string; index: I }> {
  const run = stageContext(stage, params, { root });
  assert.equal((await stage.run(run.ctx)).status, 'done');
  const file = run.ctx.outs.index!;
  const text = fs.readFileSync(file, 'utf8');
  return { text, digest: await hashFileContent(file), index: JSON.parse(text) as I };
}

/** Every file the samples name is in `files` with its true size; nothing else is. */
function assertFilesCover(root: string, referenced: string[], files: Record<string, { bytes: number; xxh128: string }>): void {
  assert.deepEqual(Object.keys(files), [...new Set(referenced)].sort());
  for (const [rel, digest] of Object.entries(files)) {
    assert.equal(digest.bytes, fs.statSync(path.join(root, rel)).size, rel);
    assert.match(digest.xxh128, /^[0-9a-f]{32}$/, rel);
  }
}

test('carvana.ingest: one changed JPEG byte changes index.json; unchanged data gives identical bytes', async () => {
  const { root, stems } = copyCarvanaSample(4);
  const first = await ingest<typeof defaultCarvanaIngestParams, CarvanaIndex>(carvanaIngest, defaultCarvanaIngestParams, root);
  assertFilesCover(root, first.index.samples.flatMap((s) => [s.image, s.label]), first.index.files);
  assert.equal(first.index.samples.length, 4);

  const again = await ingest<typeof defaultCarvanaIngestParams, CarvanaIndex>(carvanaIngest, defaultCarvanaIngestParams, root);
  assert.equal(again.text, first.text, 'same raw data must give a byte-identical index.json');

  // The same data under another absolute path differs only in `root`.
  const moved = makeTempDir('flow-raw-carvana-moved-');
  fs.cpSync(root, moved, { recursive: true });
  const elsewhere = await ingest<typeof defaultCarvanaIngestParams, CarvanaIndex>(carvanaIngest, defaultCarvanaIngestParams, moved);
  assert.deepEqual({ ...elsewhere.index, root: '' }, { ...first.index, root: '' });

  // One byte of the first quantisation table (the sample JPEGs start FF D8 FF DB): still a valid JPEG of the
  // same size, so nothing but the content digest can tell.
  const photo = path.join(root, 'train', `${stems[2]}.jpg`);
  const bytes = fs.readFileSync(photo);
  assert.deepEqual([...bytes.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xdb], 'the sample JPEG layout this test edits');
  bytes[10] = bytes[10]! ^ 0x01;
  fs.writeFileSync(photo, bytes);
  const changed = await ingest<typeof defaultCarvanaIngestParams, CarvanaIndex>(carvanaIngest, defaultCarvanaIngestParams, root);
  assert.equal(changed.index.samples.length, 4, 'the edited JPEG still decodes and stays a sample');
  assert.notEqual(changed.digest, first.digest);
  const rel = `train/${stems[2]}.jpg`;
  assert.notEqual(changed.index.files[rel]!.xxh128, first.index.files[rel]!.xxh128);
  assert.equal(changed.index.files[rel]!.bytes, first.index.files[rel]!.bytes);
  assert.deepEqual({ ...changed.index.files, [rel]: null }, { ...first.index.files, [rel]: null }, 'only the edited file changed');
});

const bratsParams = { strict: false, label_map: DEFAULT_LABEL_MAP, modalities: DEFAULT_MODALITIES };

test('brats.ingest: one changed voxel of a .nii.gz changes index.json; unchanged data gives identical bytes', async () => {
  const root = makeTempDir('flow-raw-brats-');
  fs.cpSync(path.join(samplesDir, 'brats'), root, { recursive: true });
  const first = await ingest<typeof bratsParams, BratsIndex>(bratsIngest, bratsParams, root);
  const referenced = first.index.samples.flatMap((s) => [...Object.values(s.images), ...(s.label === null ? [] : [s.label])]);
  assertFilesCover(root, referenced, first.index.files);

  const again = await ingest<typeof bratsParams, BratsIndex>(bratsIngest, bratsParams, root);
  assert.equal(again.text, first.text, 'same raw data must give a byte-identical index.json');

  // One int16 voxel in the middle of the flair volume, re-compressed: a valid NIfTI with one value changed.
  const sample = first.index.samples[0]!;
  const flair = path.join(root, sample.images.flair!);
  const raw = zlib.gunzipSync(fs.readFileSync(flair));
  assert.equal(raw.readInt16LE(70), 4, 'the sample flair is int16 (NIfTI datatype 4)');
  const voxOffset = raw.readFloatLE(108);
  const at = voxOffset + Math.floor((raw.length - voxOffset) / 4) * 2;
  raw.writeInt16LE(raw.readInt16LE(at) + 1, at);
  fs.writeFileSync(flair, zlib.gzipSync(raw));
  const changed = await ingest<typeof bratsParams, BratsIndex>(bratsIngest, bratsParams, root);
  assert.equal(changed.index.samples.length, first.index.samples.length, 'the edited volume still reads');
  assert.notEqual(changed.digest, first.digest);
  assert.notEqual(changed.index.files[sample.images.flair!]!.xxh128, first.index.files[sample.images.flair!]!.xxh128);
  assert.deepEqual({ ...changed.index.files, [sample.images.flair!]: null }, { ...first.index.files, [sample.images.flair!]: null });
});

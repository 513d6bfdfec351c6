// `data.root` pointing at the wrong thing, through the real CLI and the real pipelines: an empty folder, the
// other dataset's layout, a copy of the sample with a broken file. Each must fail in the first stage (ingest)
// with a message a user can act on (the folder or file, what was expected), exit 1, and leave a run folder
// whose state says failed, never one that looks finished. With strict: false (the default) a broken file is
// skipped, named in the ingest report, and the run goes on without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { samplesDir } from '../helpers/paths.js';
import {
  bratsPipeline,
  carvanaPipeline,
  copyTree,
  flow,
  latestRunDir,
  makeFlowHome,
  readJsonFile,
  readRunState,
  setArgs,
  SMALL_TRAINING,
  stageOutcomes,
  type FlowHome,
} from './helpers.js';

interface SkippedEntry {
  path: string;
  reason: string;
}

/** A failed run: exit 1, ingest failed with the message, nothing downstream of ingest ran, no metrics.json. */
async function expectIngestFailure(home: FlowHome, pipeline: string, name: string, overrides: string[], message: RegExp): Promise<string> {
  const result = await flow(home, ['run', pipeline, ...setArgs(overrides)]);
  assert.equal(result.code, 1, result.stderr);
  // The user's message, not a stack trace (no "    at fn (file:line)" frames).
  assert.doesNotMatch(result.stderr, /^\s+at .+:\d+:\d+\)?$/m, result.stderr);
  const failure = /✖ (\S+)\s+failed: (.*)/.exec(result.stderr);
  assert.ok(failure, `no failed stage in: ${result.stderr}`);
  assert.equal(failure[1], 'ingest', `the first failure is in ${failure[1]}: ${failure[2]}`);
  assert.match(failure[2]!, message);
  const runDir = latestRunDir(home, name);
  const state = readRunState(runDir);
  assert.equal(state.status, 'failed');
  assert.equal(state.stages.ingest!.status, 'failed');
  assert.match(state.stages.ingest!.error ?? '', message);
  for (const stage of ['records', 'dataset', 'preprocess', 'train', 'predict', 'evaluate']) assert.equal(state.stages[stage]!.status, 'pending', `${stage} must not run after a failed ingest`);
  assert.ok(!fs.existsSync(path.join(runDir, 'metrics.json')), 'a failed run has no metrics.json');
  return failure[2]!;
}

test('data.root at an empty folder: each pipeline fails in ingest naming the folder and the expected layout', async () => {
  const home = makeFlowHome();
  const empty = path.join(home.dir, 'empty');
  fs.mkdirSync(empty);
  const carvana = await expectIngestFailure(home, carvanaPipeline, 'carvana', [`data.root=${empty}`], /train\//);
  assert.ok(carvana.includes(empty) && /empty/.test(carvana), carvana);
  const brats = await expectIngestFailure(home, bratsPipeline, 'brats', [`data.root=${empty}`], /Training\/\{HGG,LGG\}/);
  assert.ok(brats.includes(empty) && /empty/.test(brats), brats);
});

test("data.root at the other dataset's layout: ingest says which dataset it looks like", async () => {
  const home = makeFlowHome();
  const onBrats = await expectIngestFailure(home, carvanaPipeline, 'carvana', [`data.root=${path.join(samplesDir, 'brats')}`], /BraTS/);
  assert.match(onBrats, /Training\//, 'lists what it found');
  const onCarvana = await expectIngestFailure(home, bratsPipeline, 'brats', [`data.root=${path.join(samplesDir, 'carvana')}`], /Carvana/);
  assert.match(onCarvana, /train_masks\//, 'lists what it found');
});

test('data.root that does not exist: fails before anything reads it, naming the path', async () => {
  const home = makeFlowHome();
  const missing = path.join(home.dir, 'no-such-folder');
  await expectIngestFailure(home, carvanaPipeline, 'carvana', [`data.root=${missing}`], new RegExp(`${missing.replace(/[/.]/g, '\\$&')}.*does not exist`));
});

test('a truncated JPEG: strict ingest names the file; by default it is skipped, reported, and the run finishes', async () => {
  const home = makeFlowHome();
  const root = path.join(home.dir, 'carvana');
  copyTree(path.join(samplesDir, 'carvana'), root);
  const victim = fs.readdirSync(path.join(root, 'train')).filter((f) => f.endsWith('.jpg')).sort()[0]!;
  const file = path.join(root, 'train', victim);
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 3)));

  const strict = await expectIngestFailure(home, carvanaPipeline, 'carvana', [`data.root=${root}`, '+stages.ingest.params.strict=true'], /broken image/);
  assert.ok(strict.includes(file), `names the file: ${strict}`);
  assert.match(strict, /strict: false/, 'says how to go on without it');

  const lenient = await flow(home, ['run', carvanaPipeline, ...setArgs([`data.root=${root}`, ...SMALL_TRAINING])]);
  assert.equal(lenient.code, 0, lenient.stderr);
  assert.match(lenient.stderr, new RegExp(`skipped 1 file.*${victim.replace('.', '\\.')}`));
  const runDir = latestRunDir(home, 'carvana');
  assert.ok(Object.values(stageOutcomes(readRunState(runDir))).every((o) => o === 'ran' || o === 'cached'));
  const report = readJsonFile<{ skipped: SkippedEntry[]; counts: Record<string, unknown> }>(path.join(runDir, 'stages', 'ingest', 'report', 'report.json'));
  assert.deepEqual(report.skipped.map((s) => s.path), [`train/${victim}`]);
  assert.match(report.skipped[0]!.reason, /broken image/);
  const index = readJsonFile<{ samples: { id: string }[] }>(path.join(runDir, 'stages', 'ingest', 'index'));
  const stem = victim.replace(/\.jpg$/, '');
  assert.ok(!index.samples.some((s) => s.id === stem), 'the broken pair is not in the index');
  assert.ok(index.samples.length > 0);
  assert.match(fs.readFileSync(path.join(runDir, 'stages', 'ingest', 'report', 'report.txt'), 'utf8'), new RegExp(victim.replace('.', '\\.')));
});

test('a truncated .nii.gz: strict ingest names the file; by default the patient is skipped, reported, and the run finishes', async () => {
  const home = makeFlowHome();
  const root = path.join(home.dir, 'brats');
  copyTree(path.join(samplesDir, 'brats'), root);
  const patient = 'BraTS19_SYN_0002_1';
  const rel = `Training/HGG/${patient}/${patient}_t1.nii.gz`;
  const file = path.join(root, rel);
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));

  const strict = await expectIngestFailure(home, bratsPipeline, 'brats', [`data.root=${root}`, '+stages.ingest.params.strict=true'], /gzip|truncated|corrupt/i);
  assert.ok(strict.includes(file), `names the file: ${strict}`);

  const lenient = await flow(home, ['run', bratsPipeline, ...setArgs([`data.root=${root}`, ...SMALL_TRAINING])]);
  assert.equal(lenient.code, 0, lenient.stderr);
  const runDir = latestRunDir(home, 'brats');
  assert.equal(readRunState(runDir).status, 'done');
  const report = readJsonFile<{ skipped: SkippedEntry[]; counts: { patients: number; skipped: number } }>(path.join(runDir, 'stages', 'ingest', 'report', 'report.json'));
  assert.deepEqual(report.skipped.map((s) => s.path), [rel]);
  assert.match(report.skipped[0]!.reason, /gzip|truncated|corrupt/i);
  assert.equal(report.counts.skipped, 1);
  assert.equal(report.counts.patients, 9, 'the other nine patients are used');
  const index = readJsonFile<{ samples: { id: string }[] }>(path.join(runDir, 'stages', 'ingest', 'index'));
  assert.ok(!index.samples.some((s) => s.id === patient), 'the broken patient is not in the index');
  const metrics = readJsonFile<Record<string, unknown>>(path.join(runDir, 'metrics.json'));
  assert.equal(typeof metrics.WT_dice, 'number');
});

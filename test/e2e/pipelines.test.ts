// The two shipped pipelines end to end through the real CLI (compiled build when run from dist/), on the shipped
// samples, with small training overrides so each run takes seconds: every stage done, the metrics a user reads,
// report.html; a training-param change reuses the data stages from the cache; Ctrl+C during training, then
// `flow resume`, finishes the run from the checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  brats3dPipeline,
  bratsPipeline,
  carvanaPipeline,
  flow,
  latestRunDir,
  makeFlowHome,
  readJsonFile,
  readRunState,
  runDirs,
  setArgs,
  SMALL_TRAINING,
  spawnFlow,
  stageOutcomes,
  trainingCheckpoints,
  waitFor,
  type FlowHome,
  type RunStateJson,
} from './helpers.js';

/** The twelve steps every example pipeline covers, by stage kind (DESIGN.md). */
const TWELVE_KINDS = ['ingest', 'tfrecord.write', 'tfrecord.read', 'preprocess', 'hparams', 'model.build', 'train', 'train.log', 'export', 'model.load', 'predict', 'evaluate'];
/** Stages whose work does not depend on training params: a train.lr change must find them in the cache. */
const DATA_STAGES = ['ingest', 'records', 'dataset', 'preprocess'];
/** Stages downstream of hparams: a train.lr change must re-run them. */
const TRAINING_STAGES = ['hparams', 'train', 'log', 'export', 'reload', 'predict', 'evaluate'];

/** Kinds of the stages in a run's resolved config (config.yaml is the snapshot the run actually used). */
function kindsInConfig(runDir: string): string[] {
  const config = fs.readFileSync(path.join(runDir, 'config.yaml'), 'utf8');
  return [...config.matchAll(/^\s+kind:\s*"?([\w.]+)"?\s*$/gm)].map((m) => m[1]!);
}

function assertAllDone(state: RunStateJson, stderr: string): void {
  assert.equal(state.status, 'done', stderr);
  assert.equal(state.order.length, 12, `twelve stages: ${state.order.join(', ')}`);
  for (const name of state.order) assert.equal(state.stages[name]!.status, 'done', `${name}: ${state.stages[name]!.error ?? ''}`);
}

async function runAndCheck(home: FlowHome, pipeline: string, name: string, overrides: string[]): Promise<{ runDir: string; state: RunStateJson; stderr: string }> {
  const result = await flow(home, ['run', pipeline, ...setArgs(overrides)]);
  assert.equal(result.code, 0, result.stderr);
  const runDir = latestRunDir(home, name);
  const state = readRunState(runDir);
  assertAllDone(state, result.stderr);
  return { runDir, state, stderr: result.stderr };
}

/** A training-param change: data stages from the cache, training and what follows re-run, the reason names it. */
function assertLrChangeReuse(second: RunStateJson, stderr: string, oldLr: string, newLr: string): void {
  const outcomes = stageOutcomes(second);
  for (const name of DATA_STAGES) assert.equal(outcomes[name], 'cached', `${name} should come from the cache: ${JSON.stringify(outcomes)}`);
  assert.equal(outcomes.model, 'cached', 'the model does not depend on the learning rate');
  for (const name of TRAINING_STAGES) assert.equal(outcomes[name], 'ran', `${name} should re-run: ${JSON.stringify(outcomes)}`);
  const reason = second.stages.hparams!.reason.join('\n');
  assert.match(reason, /train\.lr/, reason);
  assert.ok(reason.includes(oldLr) && reason.includes(newLr), `reason should show ${oldLr} → ${newLr}: ${reason}`);
  // What the user sees: the status line of the re-run stage gives the same reason.
  const printed = stderr.split('\n').find((line) => /▶ hparams\s+running:/.test(line)) ?? '';
  assert.ok(/train\.lr/.test(printed) && printed.includes(oldLr) && printed.includes(newLr), `printed reason: ${printed}`);
}

test('carvana.yaml: twelve steps to done on the sample; a train.lr change reuses ingest, records, dataset, preprocess', async () => {
  const home = makeFlowHome();
  const first = await runAndCheck(home, carvanaPipeline, 'carvana', SMALL_TRAINING);
  for (const kind of TWELVE_KINDS) assert.ok(kindsInConfig(first.runDir).some((k) => k === kind || k.startsWith(`${kind}.`) || k.endsWith(`.${kind}`)), `no ${kind} stage`);
  assert.ok(Object.values(stageOutcomes(first.state)).every((o) => o === 'ran'), 'a cold cache runs every stage');
  const metrics = readJsonFile<Record<string, unknown>>(path.join(first.runDir, 'metrics.json'));
  assert.equal(typeof metrics.dice, 'number');
  assert.ok((metrics.dice as number) >= 0 && (metrics.dice as number) <= 1);
  assert.ok(fs.statSync(path.join(first.runDir, 'report.html')).size > 1000, 'report.html is written');

  const second = await runAndCheck(home, carvanaPipeline, 'carvana', [...SMALL_TRAINING, 'train.lr=0.001']);
  assert.notEqual(second.runDir, first.runDir);
  assertLrChangeReuse(second.state, second.stderr, '0.003', '0.001');
});

test('brats.yaml: twelve steps to done on the sample with WT/TC/ET Dice and HD95; a train.lr change reuses the data stages', async () => {
  const home = makeFlowHome();
  const first = await runAndCheck(home, bratsPipeline, 'brats', SMALL_TRAINING);
  const kinds = kindsInConfig(first.runDir);
  for (const kind of ['brats.ingest', 'preprocess.brats', ...TWELVE_KINDS.filter((k) => k !== 'ingest' && k !== 'preprocess')]) assert.ok(kinds.includes(kind), `no ${kind} stage in ${kinds.join(', ')}`);
  const metrics = readJsonFile<Record<string, unknown>>(path.join(first.runDir, 'metrics.json'));
  assert.equal(metrics.dataset, 'brats');
  for (const region of ['WT', 'TC', 'ET']) {
    const dice = metrics[`${region}_dice`];
    assert.equal(typeof dice, 'number', `${region}_dice`);
    assert.ok((dice as number) >= 0 && (dice as number) <= 1, `${region}_dice ${String(dice)}`);
    assert.ok(`${region}_hd95` in metrics, `${region}_hd95`);
  }
  const report = fs.readFileSync(path.join(first.runDir, 'report.html'), 'utf8');
  assert.match(report, /WT/);
  // The held-out patients were predicted as whole volumes, in the dataset's own format.
  const pairs = readJsonFile<{ format: string; cases: { id: string; label: string | null }[] }>(path.join(first.runDir, 'stages', 'predict', 'predictions', 'pairs.json'));
  assert.equal(pairs.format, 'nifti');
  assert.ok(pairs.cases.length >= 1 && pairs.cases.every((c) => /^BraTS19_/.test(c.id) && c.label !== null), JSON.stringify(pairs.cases));

  const second = await runAndCheck(home, bratsPipeline, 'brats', [...SMALL_TRAINING, 'train.lr=0.002']);
  assertLrChangeReuse(second.state, second.stderr, '0.001', '0.002');
});

test('brats-3d.yaml: a 3D U-Net on 3D patches through the twelve steps; predictions are whole volumes stitched from tiles', async () => {
  const home = makeFlowHome();
  const { runDir } = await runAndCheck(home, brats3dPipeline, 'brats-3d', ['train.epochs=2', 'train.input_size=[16,16,16]', 'train.filters=2', 'train.depth=2']);
  const kinds = kindsInConfig(runDir);
  for (const kind of ['brats.ingest', 'preprocess.brats', 'model.build', 'train', 'predict', 'evaluate']) assert.ok(kinds.includes(kind), `no ${kind} stage`);
  const transform = readJsonFile<{ mode: string; patch: number[] }>(path.join(runDir, 'stages', 'preprocess', 'transform'));
  assert.equal(transform.mode, 'patches3d');
  assert.deepEqual(transform.patch, [16, 16, 16]);
  const modelJson = readJsonFile<{ modelTopology: { config: { layers: { class_name: string }[] } } }>(path.join(runDir, 'stages', 'export', 'model', 'model.json'));
  const layerKinds = modelJson.modelTopology.config.layers.map((layer) => layer.class_name);
  assert.ok(layerKinds.includes('Conv3D') && layerKinds.includes('Conv3DTranspose'), layerKinds.join(', '));
  const metrics = readJsonFile<Record<string, unknown>>(path.join(runDir, 'metrics.json'));
  for (const region of ['WT', 'TC', 'ET']) assert.equal(typeof metrics[`${region}_dice`], 'number', `${region}_dice`);
  const pairs = readJsonFile<{ format: string; cases: { id: string; prediction: string; label: string | null }[] }>(path.join(runDir, 'stages', 'predict', 'predictions', 'pairs.json'));
  assert.equal(pairs.format, 'nifti');
  assert.ok(pairs.cases.length >= 1);
  // A prediction has the label volume's dimensions (the header's dim[1..3] at bytes 42..47 of the NIfTI-1 header).
  const { gunzipSync } = await import('node:zlib');
  const dims = (file: string): number[] => {
    const header = gunzipSync(fs.readFileSync(path.join(runDir, 'stages', 'predict', 'predictions', file)));
    return [header.readInt16LE(42), header.readInt16LE(44), header.readInt16LE(46)];
  };
  for (const c of pairs.cases) assert.deepEqual(dims(c.prediction), dims(c.label!), c.id);
});

test('Ctrl+C during training: exit 130, state interrupted; flow resume finishes from the checkpoint', async () => {
  const home = makeFlowHome();
  const overrides = ['train.epochs=30', 'train.input_size=[32,32]', 'train.filters=4', 'train.checkpoint_every_steps=2'];
  const run = spawnFlow(home, ['run', carvanaPipeline, ...setArgs(overrides)]);
  let runDir = '';
  await waitFor(
    () => {
      const dirs = runDirs(home, 'carvana');
      if (dirs.length === 0) return false;
      runDir = dirs[0]!;
      return readRunState(runDir).stages.train?.status === 'running' && trainingCheckpoints(home).length > 0;
    },
    120_000,
    'the train stage to run and write a checkpoint',
  );
  run.child.kill('SIGINT');
  const stopped = await run.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  const interrupted = readRunState(runDir);
  assert.equal(interrupted.status, 'interrupted');
  assert.equal(interrupted.stages.train!.status, 'interrupted');
  assert.equal(interrupted.stages.evaluate!.status, 'pending');
  assert.ok(!fs.existsSync(path.join(runDir, 'metrics.json')), 'an interrupted run has no metrics.json');
  assert.ok(trainingCheckpoints(home).length > 0, 'the checkpoint survives the interruption');

  const resumed = await flow(home, ['resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resum/i);
  const finished = readRunState(runDir);
  assertAllDone(finished, resumed.stderr);
  assert.equal(finished.stages.train!.resumedFromCheckpoint, true);
  assert.equal(finished.stages.ingest!.status, 'done');
  const summary = readJsonFile<{ epochs_run: number; resumed_count: number }>(path.join(runDir, 'stages', 'train', 'summary'));
  assert.equal(summary.epochs_run, 30, 'training ran to its planned end');
  assert.ok(summary.resumed_count >= 1, `train summary says it resumed: ${JSON.stringify(summary)}`);
  assert.equal(typeof readJsonFile<Record<string, unknown>>(path.join(runDir, 'metrics.json')).dice, 'number');
});

// In-process runs of toy pipelines: caching, invalidation by params / inputs / version, --from / --force,
// failures, run-folder contents and inspection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeProject, readTree, runInProcess, stageOutcomes, toyCatalogEntries, type Project } from './helpers.js';
import { MapCatalog } from '../../engine/registry.js';
import { diffRuns, listRunSummaries, showRun, collectGarbage } from '../../engine/inspect.js';

const TOY_PIPELINE = `name: toy
params:
  values: [1, 2, 3]
  scale: { factor: 2, label: double }
  other: { factor: 10 }
stages:
  source: { kind: toy.source, params: { values: "\${params.values}" } }
  scaled:
    kind: toy.scale
    inputs: { numbers: "\${stages.source.outs.numbers}" }
    params: { factor: "\${params.scale.factor}", label: "\${params.scale.label}" }
  tenfold:
    kind: toy.scale
    inputs: { numbers: "\${stages.source.outs.numbers}" }
    params: { factor: "\${params.other.factor}" }
  external:
    kind: toy.scale
    inputs: { numbers: data/numbers.json }
    params: { factor: 3 }
  summary:
    run: "cat \${stages.scaled.outs.result}/result.json \${stages.external.outs.result}/result.json > \${outs.text}"
    deps: [data/notes.txt]
    outs: { text: summary.txt }
  score:
    run: "node data/score.mjs \${stages.scaled.outs.result}/result.json > \${outs.metrics}"
    deps: [data/score.mjs]
    outs: { metrics: metrics.json }
metrics: \${stages.score.outs.metrics}
`;
const SCORE_SCRIPT = "import fs from 'node:fs';\nconst r = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));\nconsole.log(JSON.stringify({ dice: r[0] / 10, mean: { loss: 1 / r[1] }, count: r.length }));\n";

async function toyProject(): Promise<{ project: Project; file: string }> {
  const project = await makeProject();
  project.write('data/numbers.json', '[4, 5, 6]');
  project.write('data/notes.txt', 'notes');
  project.write('data/score.mjs', SCORE_SCRIPT);
  const file = project.write('pipelines/toy.yaml', TOY_PIPELINE);
  return { project, file };
}

function outputsOf(runDir: string): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const stage of fs.readdirSync(path.join(runDir, 'stages'))) result[stage] = readTree(path.join(runDir, 'stages', stage));
  return result;
}

test('an unchanged re-run is all cache hits with identical outputs', async () => {
  const { project, file } = await toyProject();
  const first = await runInProcess(project, file);
  assert.equal(first.status, 'done', first.output);
  assert.deepEqual(stageOutcomes(first), { source: 'ran', scaled: 'ran', tenfold: 'ran', external: 'ran', summary: 'ran', score: 'ran' });
  const second = await runInProcess(project, file);
  assert.equal(second.exitCode, 0);
  assert.deepEqual(stageOutcomes(second), { source: 'cached', scaled: 'cached', tenfold: 'cached', external: 'cached', summary: 'cached', score: 'cached' });
  assert.match(second.output, /✔ scaled {2}cached \(key [0-9a-f]{8}…\)/);
  assert.deepEqual(outputsOf(second.runDir), outputsOf(first.runDir));
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(first.runDir, 'stages', 'scaled', 'result', 'result.json'), 'utf8')), [2, 4, 6]);
  assert.notEqual(first.runId, second.runId);
  // Same keys in both runs' state.
  for (const stage of first.state.order) assert.equal(second.state.stages[stage]!.key, first.state.stages[stage]!.key);
});

test('--set on a param used by one stage re-runs exactly that stage and its dependents, naming param and values', async () => {
  const { project, file } = await toyProject();
  await runInProcess(project, file);
  const changed = await runInProcess(project, file, { overrides: ['scale.factor=5'] });
  assert.deepEqual(stageOutcomes(changed), { source: 'cached', scaled: 'ran', tenfold: 'cached', external: 'cached', summary: 'ran', score: 'ran' });
  assert.match(changed.output, /▶ scaled {2}running: param scaled\.factor: 2 → 5/);
  assert.match(changed.state.stages.summary!.reason.join('\n'), /input stages\.scaled\.outs\.result changed \(digest/);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(changed.runDir, 'stages', 'scaled', 'result', 'result.json'), 'utf8')), [5, 10, 15]);
  // The run folder snapshots the override exactly as typed and the resolved config.
  assert.equal(fs.readFileSync(path.join(changed.runDir, 'overrides.txt'), 'utf8'), 'scale.factor=5\n');
  assert.match(fs.readFileSync(path.join(changed.runDir, 'config.yaml'), 'utf8'), /factor: 5/);
});

test('one changed byte of a declared input re-runs exactly its dependents; touching mtime does not', async () => {
  const { project, file } = await toyProject();
  await runInProcess(project, file);
  const numbers = path.join(project.dir, 'data/numbers.json');
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(numbers, later, later);
  const touched = await runInProcess(project, file);
  assert.deepEqual(Object.values(stageOutcomes(touched)), ['cached', 'cached', 'cached', 'cached', 'cached', 'cached']);
  fs.writeFileSync(numbers, '[4, 5, 7]'); // one byte
  const edited = await runInProcess(project, file);
  assert.deepEqual(stageOutcomes(edited), { source: 'cached', scaled: 'cached', tenfold: 'cached', external: 'ran', summary: 'ran', score: 'cached' });
  assert.match(edited.state.stages.external!.reason[0]!, /^input numbers changed \(digest [0-9a-f]+… → [0-9a-f]+…\)$/);
  // A command stage's dep is an input too.
  fs.writeFileSync(path.join(project.dir, 'data/notes.txt'), 'Notes');
  const dep = await runInProcess(project, file);
  assert.deepEqual(stageOutcomes(dep), { source: 'cached', scaled: 'cached', tenfold: 'cached', external: 'cached', summary: 'ran', score: 'cached' });
  assert.match(dep.state.stages.summary!.reason.join(), /input data\/notes\.txt changed/);
});

test("changing a stage implementation's version or code invalidates that stage (and what consumes changed outputs)", async () => {
  const { project, file } = await toyProject();
  await runInProcess(project, file);
  const entries = await toyCatalogEntries();
  const bumped = new MapCatalog(entries.map((e) => (e.kind === 'toy.source' ? { ...e, version: '2' } : e)));
  const run = await runInProcess(project, file, { catalog: bumped });
  assert.equal(stageOutcomes(run).source, 'ran');
  assert.deepEqual(run.state.stages.source!.reason, ['version 1 → 2']);
  // Same output bytes, so downstream keys are unchanged: the cache stops the ripple.
  assert.equal(stageOutcomes(run).scaled, 'cached');
  const edited = new MapCatalog(entries.map((e) => (e.kind === 'toy.scale' ? { ...e, codeDigest: 'other', codeFiles: { ...e.codeFiles, 'test/fixtures/engine/stages/toy-helper.mjs': 'changed' } } : e)));
  const code = await runInProcess(project, file, { catalog: edited });
  assert.deepEqual(stageOutcomes(code), { source: 'cached', scaled: 'ran', tenfold: 'ran', external: 'ran', summary: 'cached', score: 'cached' });
  assert.deepEqual(code.state.stages.scaled!.reason, ['code of test/fixtures/engine/stages/toy-helper.mjs changed']);
});

test('the code digest covers imported project modules and package versions', async () => {
  const entries = await toyCatalogEntries();
  const scale = entries.find((e) => e.kind === 'toy.scale')!;
  assert.deepEqual(Object.keys(scale.codeFiles).sort(), ['test/fixtures/engine/stages/scale.mjs', 'test/fixtures/engine/stages/toy-helper.mjs']);
  const source = entries.find((e) => e.kind === 'toy.source')!;
  assert.notEqual(scale.codeDigest, source.codeDigest);
  assert.equal(scale.codeFiles['test/fixtures/engine/stages/toy-helper.mjs'], source.codeFiles['test/fixtures/engine/stages/toy-helper.mjs']);
});

test('--from re-runs a stage and its downstream; --force re-runs exactly one stage', async () => {
  const { project, file } = await toyProject();
  await runInProcess(project, file);
  const from = await runInProcess(project, file, { from: ['scaled'] });
  assert.deepEqual(stageOutcomes(from), { source: 'cached', scaled: 'ran', tenfold: 'cached', external: 'cached', summary: 'ran', score: 'ran' });
  assert.deepEqual(from.state.stages.summary!.reason, ['forced (downstream of --from scaled)']);
  const force = await runInProcess(project, file, { force: ['source'] });
  // Same outputs → downstream keys unchanged → cached.
  assert.deepEqual(stageOutcomes(force), { source: 'ran', scaled: 'cached', tenfold: 'cached', external: 'cached', summary: 'cached', score: 'cached' });
  await assert.rejects(runInProcess(project, file, { force: ['nope'] }), /no stage named "nope"/);
});

test('a failing command stage fails the run (exit 1), leaves no entry, and later stages stay pending', async () => {
  const project = await makeProject();
  const file = project.write(
    'p.yaml',
    `name: failing
stages:
  ok: { run: "echo fine > \${outs.out}", outs: { out: out.txt } }
  bad: { run: "echo half > \${outs.out}; echo broken >&2; exit 3", outs: { out: out.txt }, needs: [ok] }
  missing: { run: "true", outs: { out: out.txt } }
  after: { run: "cat \${stages.bad.outs.out} > \${outs.out}", outs: { out: out.txt } }
`,
  );
  const run = await runInProcess(project, file);
  assert.equal(run.status, 'failed');
  assert.equal(run.exitCode, 1);
  assert.deepEqual(stageOutcomes(run), { ok: 'ran', bad: 'failed', missing: 'failed', after: 'pending' });
  assert.match(run.state.stages.bad!.error!, /exit code 3/);
  assert.match(run.state.stages.missing!.error!, /did not create its declared output out/);
  assert.match(run.output, /\[bad\] broken/);
  assert.ok(!fs.existsSync(path.join(project.cacheDir, 'entries', run.state.stages.bad!.key!)));
  assert.deepEqual(fs.readdirSync(path.join(project.cacheDir, 'tmp')), []);
  const state = JSON.parse(fs.readFileSync(path.join(run.runDir, 'state.json'), 'utf8'));
  assert.equal(state.status, 'failed');
});

test('run folder: env.json, log.ndjson, metrics.json, stage links; jobs > 1 gives the same result', async () => {
  const { project, file } = await toyProject();
  const run = await runInProcess(project, file, { jobs: 3 });
  assert.equal(run.status, 'done');
  const env = JSON.parse(fs.readFileSync(path.join(run.runDir, 'env.json'), 'utf8'));
  assert.equal(env.node, process.version);
  assert.deepEqual(env.stages.scaled, { factor: 2 });
  assert.equal(typeof env.packages['hash-wasm'], 'string');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(run.runDir, 'metrics.json'), 'utf8')), { dice: 0.2, mean: { loss: 0.25 }, count: 3 });
  const log = fs.readFileSync(path.join(run.runDir, 'log.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(log.some((l) => l.stage === 'scaled' && l.msg === 'scaled' && l.n === 3));
  assert.ok(log.some((l) => l.stage === 'summary' && l.msg === 'command'));
  assert.ok(fs.lstatSync(path.join(run.runDir, 'stages', 'summary')).isSymbolicLink());
  assert.ok(fs.existsSync(path.join(run.runDir, 'stages', 'summary', 'summary.txt')));
  assert.match(path.basename(run.runDir), /^\d{8}-\d{6}-[a-z2-7]{4}$/);
  // report.html is written at the end of every run (engine/report.ts renders it from the run folder).
  assert.match(fs.readFileSync(path.join(run.runDir, 'report.html'), 'utf8'), /<title>toy · /);
});

test('runs / show / diff summarise runs; gc keeps referenced entries', async () => {
  const { project, file } = await toyProject();
  const a = await runInProcess(project, file);
  const b = await runInProcess(project, file, { overrides: ['scale.factor=3'] });
  const runs = await listRunSummaries(project.runsDir, 'toy');
  assert.deepEqual(runs.map((r) => r.runId), [a.runId, b.runId]);
  assert.equal(runs[1]!.params['scale.factor'], 3);
  assert.deepEqual(runs[1]!.metrics, { dice: 0.3, 'mean.loss': 1 / 6, count: 3 });
  const shown = await showRun(b.runDir);
  assert.equal(shown.stages.scaled!.cached, false);
  assert.equal(shown.files['stages/scaled'], fs.realpathSync(path.join(b.runDir, 'stages', 'scaled')));
  const d = await diffRuns(a.runDir, b.runDir);
  assert.deepEqual(d.params, [{ name: 'scale.factor', old: 2, new: 3 }]);
  assert.deepEqual(d.metrics.find((m) => m.name === 'dice'), { name: 'dice', old: 0.2, new: 0.3, delta: 0.3 - 0.2 });
  assert.equal(d.stages.find((s) => s.name === 'scaled')!.change, 'rerun');
  assert.equal(d.stages.find((s) => s.name === 'source')!.change, 'same-key');

  // Delete run a: its scaled/summary entries become garbage; b's stay.
  const orphanKey = a.state.stages.scaled!.key!;
  fs.rmSync(a.runDir, { recursive: true });
  const dry = collectGarbage(project.cacheDir, project.runsDir, true);
  assert.ok(dry.removed.some((r) => r.path.endsWith(orphanKey)));
  assert.ok(fs.existsSync(path.join(project.cacheDir, 'entries', orphanKey)));
  const gc = collectGarbage(project.cacheDir, project.runsDir, false);
  assert.equal(gc.removed.filter((r) => r.path.includes(`${path.sep}entries${path.sep}`)).length, 3);
  assert.ok(gc.bytes > 0);
  assert.ok(!fs.existsSync(path.join(project.cacheDir, 'entries', orphanKey)));
  for (const s of Object.values(b.state.stages)) assert.ok(fs.existsSync(path.join(project.cacheDir, 'entries', s.key!, 'entry.json')));
  const again = await runInProcess(project, file, { overrides: ['scale.factor=3'] });
  assert.ok(Object.values(stageOutcomes(again)).every((o) => o === 'cached'));
});

const COUNTING = `name: counting
params: { target: 80, stepMs: 15 }
stages:
  count: { kind: toy.count, params: { target: "\${params.target}", stepMs: "\${params.stepMs}" } }
`;

function savedCount(project: Project): number {
  const dir = path.join(project.cacheDir, 'checkpoints');
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const file = path.join(dir, name, 'counter.json');
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')).count as number;
  }
  return 0;
}

async function interruptedCount(project: Project, file: string): Promise<{ runId: string; stoppedAt: number }> {
  const abort = new AbortController();
  const timer = setInterval(() => savedCount(project) >= 4 && abort.abort(), 10);
  const run = await runInProcess(project, file, { abort: abort.signal });
  clearInterval(timer);
  assert.equal(run.status, 'interrupted');
  assert.equal(run.exitCode, 130);
  assert.equal(run.state.stages.count!.status, 'interrupted');
  return { runId: run.runId, stoppedAt: savedCount(project) };
}

test('a later flow run with the same key picks the checkpoint up and says so; a different key starts fresh', async () => {
  const project = await makeProject();
  const file = project.write('p.yaml', COUNTING);
  const { runId, stoppedAt } = await interruptedCount(project, file);
  assert.ok(stoppedAt >= 4 && stoppedAt < 80);
  const other = await runInProcess(project, file, { overrides: ['stepMs=1'] });
  assert.equal(other.status, 'done');
  assert.equal(other.state.stages.count!.resumedFromCheckpoint, false);
  assert.equal(JSON.parse(fs.readFileSync(path.join(other.runDir, 'stages', 'count', 'count'), 'utf8')).startedAt, 0);
  const again = await runInProcess(project, file);
  assert.match(again.output, new RegExp(`▶ count {2}running: .*resuming interrupted checkpoint from run ${runId}`));
  assert.equal(again.state.stages.count!.resumedFromCheckpoint, true);
  const out = JSON.parse(fs.readFileSync(path.join(again.runDir, 'stages', 'count', 'count'), 'utf8'));
  assert.deepEqual(out, { count: 80, startedAt: out.startedAt });
  assert.ok(out.startedAt >= stoppedAt);
});

test('resume keeps done stages, recomputes a done stage whose entry vanished, and finishes the rest', async () => {
  const { project, file } = await toyProject();
  const abort = new AbortController();
  abort.abort();
  const stopped = await runInProcess(project, file, { abort: abort.signal });
  assert.equal(stopped.status, 'interrupted');
  assert.ok(Object.values(stopped.state.stages).every((s) => s.status === 'pending'));
  const partial = await runInProcess(project, file, { resumeRunDir: stopped.runDir });
  assert.equal(partial.runId, stopped.runId);
  assert.equal(partial.status, 'done');
  fs.rmSync(path.join(project.cacheDir, 'entries', partial.state.stages.tenfold!.key!), { recursive: true });
  const state = JSON.parse(fs.readFileSync(path.join(partial.runDir, 'state.json'), 'utf8'));
  state.status = 'interrupted';
  fs.writeFileSync(path.join(partial.runDir, 'state.json'), JSON.stringify(state));
  const resumed = await runInProcess(project, file, { resumeRunDir: partial.runDir });
  assert.equal(resumed.status, 'done');
  assert.equal(stageOutcomes(resumed).tenfold, 'ran');
  assert.match(resumed.output, /✔ source {2}done \(kept from this run/);
  assert.deepEqual(resumed.state.stages.tenfold!.reason, ['same key as before, but no finished cache entry (it was interrupted, failed or removed)']);
  assert.equal(fs.readdirSync(path.join(project.runsDir, 'toy')).length, 1);
});

test('an abort stops a running command stage (interrupted, exit 130) and starts nothing new', async () => {
  const project = await makeProject();
  const file = project.write('p.yaml', `name: sleepy\nstages:\n  nap: { run: "sleep 30 && echo late > \${outs.out}", outs: { out: out.txt } }\n  after: { run: "cat \${stages.nap.outs.out} > \${outs.out}", outs: { out: out.txt } }\n`);
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 300);
  const started = Date.now();
  const run = await runInProcess(project, file, { abort: abort.signal });
  assert.ok(Date.now() - started < 10_000, 'the command was not stopped');
  assert.equal(run.exitCode, 130);
  assert.deepEqual(stageOutcomes(run), { nap: 'interrupted', after: 'pending' });
  assert.deepEqual(fs.readdirSync(path.join(project.cacheDir, 'tmp')), []);
});

test('--jobs 2 runs independent stages at the same time', async () => {
  const project = await makeProject();
  // `waits` only finishes once `signals` has started: with one job at a time it would time out and fail.
  const file = project.write(
    'p.yaml',
    `name: parallel
stages:
  waits: { run: "i=0; while [ ! -f started.flag ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; test -f started.flag && echo ok > \${outs.out}", outs: { out: out.txt } }
  signals: { run: "touch started.flag; sleep 0.3; echo ok > \${outs.out}", outs: { out: out.txt } }
`,
  );
  const run = await runInProcess(project, file, { jobs: 2 });
  assert.equal(run.status, 'done', run.output);
  fs.rmSync(path.join(project.dir, 'started.flag'));
  const serial = await runInProcess(project, file, { jobs: 1, from: ['waits', 'signals'] });
  assert.equal(serial.state.stages.waits!.status, 'failed');
});

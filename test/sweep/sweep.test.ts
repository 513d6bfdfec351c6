// Sweeps through the real CLI on the toy stages: a grid of 4 computes each shared upstream stage once (one
// run computes it, the other three find it in the cache), and an interrupted sweep resumed with
// `flow resume SWEEP` runs only what is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeProject, runCli, spawnCli, waitFor, type Project } from '../engine/helpers.js';
import { readManifest, sweepsDir, type SweepManifest } from '../../engine/sweeps/manifest.js';
import { readRunState, type RunState } from '../../engine/run-folder.js';

const PIPELINE = `name: toysweep
params: { values: [1, 2, 3], factor: 1, target: 3 }
stages:
  src: { kind: toy.source, params: { values: "\${params.values}" } }
  # shared by every combination and slow enough that concurrent runs meet at its lock
  slow: { kind: toy.count, inputs: { numbers: "\${stages.src.outs.numbers}" }, params: { target: 15, stepMs: 20 } }
  scale:
    kind: toy.scale
    inputs: { numbers: "\${stages.src.outs.numbers}" }
    params: { factor: "\${params.factor}" }
    needs: [slow]
  count: { kind: toy.count, inputs: { numbers: "\${stages.scale.outs.result}" }, params: { target: "\${params.target}", stepMs: 5 } }
metrics: "\${stages.count.outs.count}"
`;

function onlySweep(project: Project): { manifest: SweepManifest; sweepDir: string } {
  const dir = sweepsDir(project.runsDir, 'toysweep');
  const ids = fs.readdirSync(dir);
  assert.equal(ids.length, 1, ids.join(', '));
  return { manifest: readManifest(path.join(dir, ids[0]!)), sweepDir: path.join(dir, ids[0]!) };
}

function states(project: Project, manifest: SweepManifest): RunState[] {
  return manifest.members.map((m) => readRunState(path.join(project.runsDir, 'toysweep', m.runId!))!);
}

test('a sweep of 4 runs concurrently and computes each shared upstream stage once', async () => {
  const project = await makeProject();
  const file = project.write('sweep.yaml', PIPELINE);
  const result = await runCli(project, ['run', file, '--sweep', 'factor=1,2', '--sweep', 'target=2..3', '--jobs', '4']);
  assert.equal(result.code, 0, result.stderr);
  const { manifest, sweepDir } = onlySweep(project);
  assert.equal(manifest.status, 'done');
  assert.deepEqual(manifest.members.map((m) => m.overrides), [['factor=1', 'target=2'], ['factor=1', 'target=3'], ['factor=2', 'target=2'], ['factor=2', 'target=3']]);
  const runs = states(project, manifest);
  assert.equal(new Set(runs.map((r) => r.runId)).size, 4, 'a run folder per combination');
  for (const r of runs) assert.equal(r.status, 'done');
  for (const shared of ['src', 'slow']) {
    const computed = runs.filter((r) => !r.stages[shared]!.cached);
    assert.equal(computed.length, 1, `${shared} computed once: ${JSON.stringify(runs.map((r) => r.stages[shared]))}`);
    assert.equal(runs.filter((r) => r.stages[shared]!.cached).length, 3, `${shared} cached in 3 of the 4 runs`);
    assert.equal(new Set(runs.map((r) => r.stages[shared]!.key)).size, 1);
  }
  // The swept stages differ by combination: 2 distinct scale keys, 4 distinct count keys.
  assert.equal(new Set(runs.map((r) => r.stages.scale!.key)).size, 2);
  assert.equal(new Set(runs.map((r) => r.stages.count!.key)).size, 4);
  assert.deepEqual(runs.map((r) => r.overrides), manifest.members.map((m) => m.overrides));
  const report = fs.readFileSync(path.join(sweepDir, 'report.html'), 'utf8');
  assert.match(report, /<svg[^>]*aria-label="count against factor"/);
  assert.match(report, /<svg[^>]*aria-label="count against target"/);
  const figures = report.split('<figure class="chart">').slice(1);
  assert.equal(figures.length, 4, 'each metric (count, startedAt) against each swept param');
  for (const f of figures) assert.equal((f.match(/<circle[^>]*fill-opacity/g) ?? []).length, 4, 'one point per run');
  // `flow runs` groups the sweep and shows only the swept params.
  const listed = await runCli(project, ['runs', '--runs', project.runsDir]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`toysweep · ${manifest.sweepId}`));
  const header = listed.stdout.split('\n').find((l) => l.startsWith('id'))!;
  assert.match(header, /factor\s+target\s+count/);
  assert.doesNotMatch(header, /values/);
  const shown = await runCli(project, ['show', manifest.sweepId, '--runs', project.runsDir]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.ok(shown.stdout.startsWith(`sweep ${manifest.sweepId}  (toysweep, done)\n`), shown.stdout);
  assert.match(shown.stdout, /^swept: --sweep factor=1,2 --sweep target=2\.\.3$/m);
  assert.equal(shown.stdout.split('\n').filter((l) => /^\d{8}-\d{6}-\w{4}\s+done/.test(l)).length, 4);
});

test('flow resume SWEEP finishes an interrupted sweep and runs only what is missing', async () => {
  const project = await makeProject();
  const file = project.write('sweep.yaml', PIPELINE);
  // One run at a time; the second combination counts long enough to be interrupted.
  const running = spawnCli(project, ['run', file, '--sweep', 'factor=1,2', '--sweep', 'target=3,150', '--jobs', '1']);
  let sweepDir = '';
  await waitFor(
    () => {
      const dir = sweepsDir(project.runsDir, 'toysweep');
      if (!fs.existsSync(dir) || fs.readdirSync(dir).length === 0) return false;
      sweepDir = path.join(dir, fs.readdirSync(dir)[0]!);
      const m = fs.existsSync(path.join(sweepDir, 'sweep.json')) ? readManifest(sweepDir).members[1]! : undefined;
      if (!m?.runId) return false;
      const st = readRunState(path.join(project.runsDir, 'toysweep', m.runId));
      return st?.stages.count?.status === 'running';
    },
    30_000,
    'the second run to be counting',
  );
  await new Promise((r) => setTimeout(r, 300));
  running.child.kill('SIGINT');
  const stopped = await running.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /continue it with: flow resume sweep-/);
  const before = readManifest(sweepDir);
  assert.equal(before.status, 'interrupted');
  assert.deepEqual(before.members.map((m) => m.status), ['done', 'interrupted', null, null]);
  const firstState = fs.readFileSync(path.join(project.runsDir, 'toysweep', before.members[0]!.runId!, 'state.json'), 'utf8');

  const resumed = await runCli(project, ['resume', before.sweepId.slice(0, 20), '--runs', project.runsDir]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /3 of 4 runs to finish/);
  const after = readManifest(sweepDir);
  assert.equal(after.status, 'done');
  assert.equal(after.members[1]!.runId, before.members[1]!.runId, 'the interrupted run resumed in its own folder');
  assert.equal(fs.readFileSync(path.join(project.runsDir, 'toysweep', after.members[0]!.runId!, 'state.json'), 'utf8'), firstState, 'the finished run was left alone');
  const runs = states(project, after);
  assert.ok(runs.every((r) => r.status === 'done'));
  assert.equal(runs[1]!.stages.count!.resumedFromCheckpoint, true);
  assert.equal(fs.readdirSync(path.join(project.runsDir, 'toysweep')).filter((n) => n !== 'sweeps').length, 4, 'no extra run folders');
  // Resuming a finished sweep does nothing.
  const again = await runCli(project, ['resume', before.sweepId, '--runs', project.runsDir]);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /already done/);
});

test('a failing combination fails the sweep but not the others; bad sweep values fail before anything runs', async () => {
  const project = await makeProject();
  const file = project.write(
    'cmd.yaml',
    'name: cmdsweep\nparams: { n: 1 }\nstages:\n  check: { run: "test ${params.n} -ne 2 && echo ${params.n} > ${outs.o}", outs: { o: o.txt } }\n',
  );
  const bad = await runCli(project, ['run', file, '--sweep', 'nn=1,2', '--sweep', 'n=1,x:y:log2']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /<--sweep>:1:1: error: --sweep nn=1,2: no key `nn` in `params` \(hint: did you mean `n`\?/);
  assert.match(bad.stderr, /<--sweep>:2:5: error: --sweep n=1,x:y:log2: range x:y:log2: x is not a number/);
  assert.ok(!fs.existsSync(path.join(project.runsDir, 'cmdsweep')), 'nothing ran, no folder was made');

  const result = await runCli(project, ['run', file, '--sweep', 'n=1..3', '--jobs', '3']);
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /\[2\/3 n=2\] ✖ check {2}failed: /);
  const dir = sweepsDir(project.runsDir, 'cmdsweep');
  const manifest = readManifest(path.join(dir, fs.readdirSync(dir)[0]!));
  assert.equal(manifest.status, 'failed');
  assert.deepEqual(manifest.members.map((m) => m.status), ['done', 'failed', 'done']);
  assert.match(result.stderr, new RegExp(`sweep ${manifest.sweepId}: failed \\(2 done, 1 failed\\)`));
});

// The CLI as users run it (a child process): interruption and resume, SIGKILL recovery, two processes on one
// cache, lazy stage imports, inspection commands with --json, validation exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeProject, runCli, spawnCli, waitFor, type Project } from './helpers.js';

const COUNT_PIPELINE = (target: number, stepMs: number): string => `name: counting
params:
  count: { target: ${target}, stepMs: ${stepMs} }
stages:
  source: { kind: toy.source, params: { values: [1, 2] } }
  count:
    kind: toy.count
    inputs: { numbers: "\${stages.source.outs.numbers}" }
    params: "\${params.count}"
  after:
    run: "cat \${stages.count.outs.count} > \${outs.copy}"
    outs: { copy: copy.json }
`;

function checkpointCount(project: Project): number {
  const dir = path.join(project.cacheDir, 'checkpoints');
  if (!fs.existsSync(dir)) return 0;
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name, 'counter.json');
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')).count as number;
  }
  return 0;
}

function onlyRun(project: Project, pipeline: string): string {
  const ids = fs.readdirSync(path.join(project.runsDir, pipeline));
  assert.equal(ids.length, 1);
  return path.join(project.runsDir, pipeline, ids[0]!);
}

function readState(runDir: string): { status: string; stages: Record<string, { status: string; cached: boolean; key: string; resumedFromCheckpoint: boolean; reason: string[] }> } {
  return JSON.parse(fs.readFileSync(path.join(runDir, 'state.json'), 'utf8'));
}

test('SIGINT during a long stage: interrupted, exit 130; flow resume continues from the checkpoint', async () => {
  const project = await makeProject();
  project.write('p.yaml', COUNT_PIPELINE(200, 15));
  const run = spawnCli(project, ['run', 'p.yaml']);
  await waitFor(() => checkpointCount(project) >= 5, 20_000, 'the count stage to checkpoint');
  run.child.kill('SIGINT');
  const result = await run.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /stopping: finishing the current step, then checkpointing/);
  const runDir = onlyRun(project, 'counting');
  const state = readState(runDir);
  assert.equal(state.status, 'interrupted');
  assert.equal(state.stages.count!.status, 'interrupted');
  assert.equal(state.stages.after!.status, 'pending');
  const stoppedAt = checkpointCount(project);
  assert.ok(stoppedAt >= 5 && stoppedAt < 200);
  assert.ok(!fs.existsSync(path.join(project.cacheDir, 'entries', state.stages.count!.key, 'entry.json')));

  const resumed = await runCli(project, ['resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming interrupted checkpoint from run/);
  const after = readState(runDir);
  assert.equal(after.status, 'done');
  assert.equal(after.stages.count!.resumedFromCheckpoint, true);
  assert.equal(after.stages.source!.status, 'done');
  const out = JSON.parse(fs.readFileSync(path.join(runDir, 'stages', 'count', 'count'), 'utf8'));
  assert.equal(out.count, 200);
  assert.ok(out.startedAt >= stoppedAt - 1 && out.startedAt > 0, `started at ${out.startedAt}, stopped at ${stoppedAt}`);
  // The committed entry took its checkpoint with it.
  assert.ok(!fs.existsSync(path.join(project.cacheDir, 'checkpoints', after.stages.count!.key)));
});

test('SIGKILL mid-stage: nothing half-written looks complete; flow resume completes the run', async () => {
  const project = await makeProject();
  project.write('p.yaml', COUNT_PIPELINE(200, 15));
  const run = spawnCli(project, ['run', 'p.yaml']);
  await waitFor(() => checkpointCount(project) >= 5, 20_000, 'the count stage to checkpoint');
  run.child.kill('SIGKILL');
  await run.done;
  const runDir = onlyRun(project, 'counting');
  const raw = readState(runDir);
  assert.equal(raw.status, 'running'); // what the dead process left...
  const shown = await runCli(project, ['show', 'latest', '--json']);
  assert.equal(JSON.parse(shown.stdout).status, 'interrupted'); // ...is read as interrupted (pid is gone)
  const key = raw.stages.count!.key;
  assert.ok(!fs.existsSync(path.join(project.cacheDir, 'entries', key)), 'no entry for the killed stage');
  const resumed = await runCli(project, ['resume', path.basename(runDir).slice(0, 12)]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const state = readState(runDir);
  assert.equal(state.status, 'done');
  const out = JSON.parse(fs.readFileSync(path.join(runDir, 'stages', 'count', 'count'), 'utf8'));
  assert.equal(out.count, 200);
  assert.ok(out.startedAt > 0);
  assert.ok(fs.existsSync(path.join(project.cacheDir, 'entries', key, 'entry.json')));
});

test('two flow run processes on one pipeline and cache both succeed; each stage is computed once', async () => {
  const project = await makeProject();
  project.write('p.yaml', COUNT_PIPELINE(15, 20));
  const [a, b] = await Promise.all([runCli(project, ['run', 'p.yaml']), runCli(project, ['run', 'p.yaml'])]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const runs = fs.readdirSync(path.join(project.runsDir, 'counting')).map((id) => readState(path.join(project.runsDir, 'counting', id)));
  assert.equal(runs.length, 2);
  for (const stage of ['source', 'count', 'after']) {
    const computed = runs.filter((r) => r.stages[stage]!.status === 'done' && !r.stages[stage]!.cached).length;
    assert.equal(computed, 1, `${stage} computed ${computed} times`);
    assert.equal(runs[0]!.stages[stage]!.key, runs[1]!.stages[stage]!.key);
  }
  const entries = fs.readdirSync(path.join(project.cacheDir, 'entries'));
  assert.equal(entries.length, 3);
  for (const key of entries) assert.ok(fs.existsSync(path.join(project.cacheDir, 'entries', key, 'entry.json')));
  assert.deepEqual(fs.readdirSync(path.join(project.cacheDir, 'tmp')), []);
  assert.deepEqual(fs.readdirSync(path.join(project.cacheDir, 'locks')), []);
});

test('a fully cached run does not import stage modules', async () => {
  const project = await makeProject();
  project.write(
    'p.yaml',
    `name: heavy
stages:
  source: { kind: toy.source }
  heavy: { kind: toy.heavy, inputs: { numbers: "\${stages.source.outs.numbers}" } }
`,
  );
  const marker = path.join(project.dir, 'heavy-imports.txt');
  const first = await runCli(project, ['run', 'p.yaml'], { FLOW_TEST_HEAVY_MARKER: marker });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(fs.readFileSync(marker, 'utf8').trim().split('\n').length, 1);
  const second = await runCli(project, ['run', 'p.yaml'], { FLOW_TEST_HEAVY_MARKER: marker });
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /✔ heavy {2}cached/);
  assert.equal(fs.readFileSync(marker, 'utf8').trim().split('\n').length, 1, 'the heavy module was imported by a cached run');
});

test('a second SIGINT exits 130 at once, with the state written as interrupted', async () => {
  const project = await makeProject();
  // The shell ignores SIGTERM, so the first signal cannot stop this stage.
  project.write('p.yaml', `name: stubborn\nstages:\n  hang: { run: "trap '' TERM; echo started; sleep 4; echo done > \${outs.out}", outs: { out: out.txt } }\n`);
  const run = spawnCli(project, ['run', 'p.yaml']);
  await waitFor(() => /\[hang\] started/.test(run.stderrSoFar()), 20_000, 'the stage to start');
  run.child.kill('SIGINT');
  await waitFor(() => /stopping:/.test(run.stderrSoFar()), 5_000, 'the first signal to be handled');
  const t = Date.now();
  run.child.kill('SIGINT');
  const result = await run.done;
  assert.equal(result.code, 130);
  assert.ok(Date.now() - t < 2_000, 'the second signal did not exit at once');
  const state = readState(onlyRun(project, 'stubborn'));
  assert.equal(state.status, 'interrupted');
  assert.equal(state.stages.hang!.status, 'interrupted');
});

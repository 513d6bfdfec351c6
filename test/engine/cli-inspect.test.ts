// CLI inspection and validation as users run them: runs / show / diff --json (child processes), validate
// and usage errors (main() in-process: only exit codes and files are checked there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeProject, runCli } from './helpers.js';
import { main } from '../../engine/cli.js';

test('runs / show / diff --json, validate, usage errors; a failed validation leaves no run folder', async () => {
  const project = await makeProject();
  project.write('p.yaml', `name: small\nparams: { f: 2 }\nstages:\n  source: { kind: toy.source }\n  scaled: { kind: toy.scale, inputs: { numbers: "\${stages.source.outs.numbers}" }, params: { factor: "\${params.f}" } }\n`);
  assert.equal((await runCli(project, ['run', 'p.yaml'])).code, 0);
  const second = await runCli(project, ['run', 'p.yaml', '--set', 'f=4']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /▶ scaled {2}running: param scaled\.factor: 2 → 4/);

  const runs = JSON.parse((await runCli(project, ['runs', '--json'])).stdout);
  assert.equal(runs.length, 2);
  assert.deepEqual(runs.map((r: { params: Record<string, number> }) => r.params.f), [2, 4]);
  const table = (await runCli(project, ['runs', 'small'])).stdout;
  assert.match(table, /^small {2}\(2 runs: 2 done\)\nid\s+status\s+started\s+duration\s+f\s*$/m);
  const [idA, idB] = runs.map((r: { runId: string }) => r.runId);
  const shown = JSON.parse((await runCli(project, ['show', idB, '--json'])).stdout);
  assert.equal(shown.stages.scaled.cached, false);
  assert.equal(shown.stages.source.cached, true);
  const diff = JSON.parse((await runCli(project, ['diff', idA, idB, '--json'])).stdout);
  assert.deepEqual(diff.params, [{ name: 'f', old: 2, new: 4 }]);
  assert.deepEqual(
    diff.stages.map((s: { name: string; change: string }) => [s.name, s.change]),
    [
      ['source', 'same-key'],
      ['scaled', 'rerun'],
    ],
  );

  assert.equal((await runCli(project, ['validate', 'p.yaml'])).stdout, 'ok: 2 stages\n');
  project.write('bad.yaml', 'name: bad\nstages:\n  source: { kind: toy.source, parms: {} }\n');
  const bad = await runCli(project, ['validate', 'bad.yaml']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.yaml:3:\d+/);
  const badRun = await runCli(project, ['run', 'bad.yaml']);
  assert.equal(badRun.code, 2);
  assert.match(badRun.stderr, /^flow: error: /m);
  assert.ok(!fs.existsSync(path.join(project.runsDir, 'bad')));
  const gc = await runCli(project, ['gc', '--dry-run']);
  assert.equal(gc.code, 0);
  assert.match(gc.stdout, /kept 3 referenced entries/);
});

test('usage errors exit 2, --help exits 0', async () => {
  assert.equal(await main(['run']), 2);
  assert.equal(await main(['frobnicate']), 2);
  assert.equal(await main(['run', 'p.yaml', '--jobs', 'zero']), 2);
  assert.equal(await main(['run', '--bogus']), 2);
  assert.equal(await main(['diff', 'only-one']), 2);
  assert.equal(await main(['run', '--help']), 0);
  assert.equal(await main(['--help']), 0);
  assert.equal(await main([]), 2);
});

test('watch re-runs only the dirty stages when a declared input changes', async () => {
  const project = await makeProject();
  project.write('data/numbers.json', '[1, 2]');
  project.write('p.yaml', `name: watched\nstages:\n  source: { kind: toy.source }\n  scaled: { kind: toy.scale, inputs: { numbers: data/numbers.json }, params: { factor: 2 } }\n`);
  const { spawnCli, waitFor } = await import('./helpers.js');
  const watch = spawnCli(project, ['watch', 'p.yaml']);
  try {
    await waitFor(() => /watching/.test(watch.stderrSoFar()), 20_000, 'the first watch run');
    fs.writeFileSync(path.join(project.dir, 'data/numbers.json'), '[1, 3]');
    await waitFor(() => (watch.stderrSoFar().match(/watching/g) ?? []).length >= 2, 20_000, 'the re-run after a change');
    const second = watch.stderrSoFar().split('── change')[1]!;
    assert.match(second, /✔ source {2}cached/);
    assert.match(second, /▶ scaled {2}running: input numbers changed/);
  } finally {
    watch.child.kill('SIGINT');
    await watch.done;
  }
});

// No orphaned commands (SIGKILL of flow's whole process group, then resume: the side effect happens once),
// and the CLI telling the truth: an unreadable state.json, usage errors exit 2, `flow diff A A`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { cliArgv, makeProject, waitFor } from '../engine/helpers.js';
import { isGroupAlive } from '../../engine/process-info.js';
import { DIAMOND, lastRunState, lockContent, plantLock, runCliWithin, runDirs, sideEffects } from './helpers.js';

const SLOW = (seconds: number): string => `name: slow
stages:
  s: { run: "echo started >> started.txt && sleep ${seconds} && echo finished >> side.txt && echo ok > \${outs.o}", outs: { o: o.txt } }
`;

test('SIGKILL of flow\'s process group: the command dies with it, and resume runs it once', async () => {
  const project = await makeProject();
  project.write("p.yaml", SLOW(2));
  // Its own process group, as a shell job is: kill -9 -PGID then hits flow and nothing it detached.
  const flow = spawn(process.execPath, [...cliArgv(), 'run', 'p.yaml'], {
    cwd: project.dir,
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, FLOW_STAGE_REGISTRY: project.registry, FLOW_CACHE: '', FLOW_RUNS: '' },
  });
  const exited = new Promise((r) => flow.on('exit', r));
  const recordDir = path.join(project.cacheDir, 'locks');
  const recordName = (): string | undefined => (fs.existsSync(recordDir) ? fs.readdirSync(recordDir).find((n) => n.endsWith('.command.json')) : undefined);
  await waitFor(() => fs.existsSync(path.join(project.dir, 'started.txt')) && recordName() !== undefined, 15_000, 'the command to start');
  const record = recordName()!;
  const pgid = (JSON.parse(fs.readFileSync(path.join(recordDir, record), 'utf8')) as { pgid: number }).pgid;
  process.kill(-flow.pid!, 'SIGKILL');
  await exited;
  // The reaper stops the command's group as soon as flow's end of its pipe closes.
  await waitFor(() => !isGroupAlive(pgid), 5_000, 'the orphaned command to be stopped');
  const resumed = await runCliWithin(project, ['resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(sideEffects(project), ['finished'], 'the side effect happened exactly once');
});

test('a command that survived its flow process (reaper gone too) is stopped before the stage runs again', async () => {
  const project = await makeProject();
  project.write('p.yaml', SLOW(1));
  const first = await runCliWithin(project, ['run', 'p.yaml']);
  assert.equal(first.code, 0);
  const key = lastRunState(project, 'slow').stages.s!.key;
  fs.rmSync(path.join(project.cacheDir, 'entries', key), { recursive: true });
  // What a SIGKILL of flow and its reaper leaves: a dead holder's lock and the record of a live command group.
  const survivor = spawn('sh', ['-c', `sleep 3 && echo finished >> side.txt`], { cwd: project.dir, detached: true, stdio: 'ignore' });
  fs.writeFileSync(path.join(project.dir, 'side.txt'), '');
  plantLock(path.join(project.cacheDir, 'locks', `${key}.lock`), lockContent(2 ** 22 + 4321), 0);
  fs.writeFileSync(
    path.join(project.cacheDir, 'locks', `${key}.command.json`),
    JSON.stringify({ pgid: survivor.pid, host: os.hostname(), stage: 's', started: new Date().toISOString(), flowPid: 2 ** 22 + 4321 }),
  );
  const again = await runCliWithin(project, ['run', 'p.yaml']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /\[s\] stopped stage s's command left running by an earlier flow process .* before running it again/);
  assert.equal(isGroupAlive(survivor.pid!), false);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(sideEffects(project), ['finished'], 'only the new run\'s command finished');
});

test('one unreadable state.json: flow runs lists the other runs and marks that one; gc warns and goes on', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml', '--set', 'salt=2'])).code, 0);
  const [broken, good] = runDirs(project, 'diamond');
  fs.writeFileSync(path.join(broken!, 'state.json'), '{"runId": "trunc');
  const runs = await runCliWithin(project, ['runs']);
  assert.equal(runs.code, 0, runs.stderr);
  // flow runs prints one table per pipeline, titled by it.
  assert.match(runs.stdout, /^diamond {2}\(2 runs: 1 unreadable, 1 done\)/m);
  assert.match(runs.stdout, new RegExp(`${path.basename(good!)}\\s+done`));
  assert.match(runs.stdout, new RegExp(`${path.basename(broken!)}\\s+unreadable`));
  assert.match(runs.stdout, new RegExp(`${path.basename(broken!)}: state.json unreadable: .*state.json: not valid JSON`));
  const json = JSON.parse((await runCliWithin(project, ['runs', '--json'])).stdout) as { status: string }[];
  assert.deepEqual(json.map((r) => r.status), ['unreadable', 'done']);
  const gc = await runCliWithin(project, ['gc', '--dry-run']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stderr, /warning: .*state.json: not valid JSON/);
});

test('usage errors exit 2: a nonexistent run, --from or --force naming an unknown stage; flow diff A A is the same run', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  for (const args of [['show', 'nosuchrun'], ['resume', 'nosuchrun'], ['verify', 'nosuchrun'], ['diff', 'nosuchrun', 'latest'], ['run', 'p.yaml', '--from', 'nosuch'], ['run', 'p.yaml', '--force', 'nosuch'], ['verify', 'latest', '--all']]) {
    const r = await runCliWithin(project, args);
    assert.equal(r.code, 2, `flow ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^flow: error: /);
  }
  const runId = lastRunState(project, 'diamond').runId;
  const same = await runCliWithin(project, ['diff', runId, 'latest']);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, new RegExp(`^diff ${runId} → ${runId}: the same run .*nothing differs`));
});

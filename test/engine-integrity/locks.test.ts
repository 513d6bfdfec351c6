// Lock liveness through the real CLI: a lock never blocks forever (0-byte lock, a live foreign pid with an old
// heartbeat, a zombie), and a waiter says whose lock it waits for. Plus the lease module's own contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { makeProject, spawnCli } from '../engine/helpers.js';
import { makeTempDir } from '../helpers/paths.js';
import { acquire, inspectLock, tryAcquire } from '../../engine/lease-lock.js';
import { DIAMOND, lastRunState, lockContent, makeZombie, plantLock, runCliWithin } from './helpers.js';

/** A project whose stage `a` has been computed once and then removed, so the next run must take a's lock. */
async function projectNeedingA(): Promise<{ project: Awaited<ReturnType<typeof makeProject>>; lockFile: string }> {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  const first = await runCliWithin(project, ['run', 'p.yaml']);
  assert.equal(first.code, 0, first.stderr);
  const key = lastRunState(project, 'diamond').stages.a!.key;
  fs.rmSync(path.join(project.cacheDir, 'entries', key), { recursive: true, force: true });
  return { project, lockFile: path.join(project.cacheDir, 'locks', `${key}.lock`) };
}

test('a 0-byte lock (a crash between create and write) is stale: the run goes on', async () => {
  const { project, lockFile } = await projectNeedingA();
  plantLock(lockFile, '', 0);
  const run = await runCliWithin(project, ['run', 'p.yaml']);
  assert.equal(run.hung, false, 'flow run hung on a 0-byte lock');
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /▶ a {2}running/);
  assert.ok(!fs.existsSync(lockFile), 'the lock is released after the stage');
});

test('a lock whose pid now belongs to another live process, heartbeat two days old, is stale', async () => {
  const { project, lockFile } = await projectNeedingA();
  const sleeper = spawn('sleep', ['120'], { stdio: 'ignore' });
  try {
    plantLock(lockFile, lockContent(sleeper.pid!), 2 * 24 * 3600_000);
    const run = await runCliWithin(project, ['run', 'p.yaml']);
    assert.equal(run.hung, false, 'flow run hung on a lock of a live foreign pid');
    assert.equal(run.code, 0, run.stderr);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('a zombie holds no lock, and a run whose process is a zombie is resumable at once', async () => {
  const { project, lockFile } = await projectNeedingA();
  const zombie = await makeZombie();
  try {
    plantLock(lockFile, lockContent(zombie.pid), 0);
    const run = await runCliWithin(project, ['run', 'p.yaml']);
    assert.equal(run.hung, false, 'flow run hung on a zombie-held lock');
    assert.equal(run.code, 0, run.stderr);
    // A run left `running` by a process that is now a zombie (SIGKILLed, not yet reaped): resume is allowed.
    const runDir = path.join(project.runsDir, 'diamond', lastRunState(project, 'diamond').runId);
    const state = JSON.parse(fs.readFileSync(path.join(runDir, 'state.json'), 'utf8'));
    fs.writeFileSync(path.join(runDir, 'state.json'), JSON.stringify({ ...state, status: 'running', pid: zombie.pid, host: os.hostname() }));
    plantLock(path.join(runDir, 'run.lock'), lockContent(zombie.pid), 0);
    const resumed = await runCliWithin(project, ['resume']);
    assert.doesNotMatch(resumed.stderr, /still running/);
    assert.equal(resumed.code, 0, resumed.stderr);
  } finally {
    zombie.stop();
  }
});

test('a waiter names the holder of the lock after a few seconds, and goes on once it is released', async () => {
  const { project, lockFile } = await projectNeedingA();
  // Held by a live process (this test) with a fresh heartbeat: a real holder.
  const holder = tryAcquire(lockFile, { purpose: 'the test holding it' });
  assert.ok(holder);
  const run = spawnCli(project, ['run', 'p.yaml']);
  const t0 = Date.now();
  while (!/waiting \d+ s for the lock/.test(run.stderrSoFar()) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
  const said = run.stderrSoFar();
  assert.match(said, new RegExp(`… a {2}waiting \\d+ s for the lock of key [0-9a-f]{8}…: held by pid ${process.pid} on ${os.hostname()} \\(the test holding it\\) since `));
  assert.match(said, /delete .*\.lock/);
  holder.release();
  const result = await run.done;
  assert.equal(result.code, 0, result.stderr);
});

test('lease module: one holder, takeover only of stale locks, a lost lease is noticed, release keeps a successor', async () => {
  const dir = makeTempDir();
  const file = path.join(dir, 'k.lock');
  const first = tryAcquire(file, { leaseMs: 400 });
  assert.ok(first);
  assert.equal(tryAcquire(file, { leaseMs: 400 }), null, 'a held lock is not taken');
  assert.equal(inspectLock(file, { leaseMs: 400 }).state, 'held');
  // The heartbeat keeps it alive past the lease.
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(inspectLock(file, { leaseMs: 400 }).state, 'held');
  first.release();
  assert.equal(inspectLock(file).state, 'free');
  // A holder on another host is judged by its heartbeat alone.
  plantLock(file, JSON.stringify({ pid: 1, host: 'elsewhere.example', created: '' }), 100);
  assert.equal(inspectLock(file, { leaseMs: 5_000 }).state, 'held');
  plantLock(file, JSON.stringify({ pid: 1, host: 'elsewhere.example', created: '' }), 10_000);
  const st = inspectLock(file, { leaseMs: 5_000 });
  assert.equal(st.state, 'stale');
  const taken = tryAcquire(file, { leaseMs: 5_000, heartbeatMs: 30 });
  assert.ok(taken);
  // Someone takes it over (we looked dead to them): our heartbeat notices, and our release leaves theirs.
  fs.rmSync(file);
  const successor = tryAcquire(file);
  assert.ok(successor);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(taken.held(), false);
  taken.release();
  assert.equal(inspectLock(file).state, 'held');
  // acquire() gives up when the work is no longer needed, and when aborted.
  assert.equal(await acquire(file, { stillNeeded: () => false }), null);
  const ac = new AbortController();
  ac.abort();
  assert.equal(await acquire(file, { signal: ac.signal }), null);
  successor.release();
  assert.deepEqual(fs.readdirSync(dir), [], 'no temp or aside files are left');
});

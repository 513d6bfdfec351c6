// What is reused is verified, through the real CLI: a deleted file or a flipped byte in an entry is a miss
// ("entry damaged: FILE ..."), never fed downstream; `flow verify` re-reads contents; entries are read-only;
// gc is crash-safe (SIGKILL on an entry of thousands of files); a folder without entry.json is never fatal;
// deleted stage links are restored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeProject, spawnCli } from '../engine/helpers.js';
import { DIAMOND, entryOuts, lastRunState, runCliWithin, runDirs } from './helpers.js';

test('a file deleted from an entry: the stage is recomputed ("entry damaged"), and downstream reuse stays right', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  const keyA = lastRunState(project, 'diamond').stages.a!.key;
  const part3 = path.join(entryOuts(project, keyA), 'out', 'part3.txt');
  assert.equal(fs.statSync(part3).mode & 0o222, 0, 'committed files are read-only');
  fs.rmSync(part3);
  const run = await runCliWithin(project, ['run', 'p.yaml']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /▶ a {2}running: entry damaged: outs\/out\/part3\.txt is missing \(moved to .*damaged/);
  assert.equal(fs.readFileSync(part3, 'utf8'), '1-3\n');
  const state = lastRunState(project, 'diamond');
  assert.equal(state.stages.b!.cached, true, 'b reuses its entry: a recomputed the same digests');
  assert.equal(fs.readdirSync(path.join(project.cacheDir, 'damaged')).length, 1);
});

test('a flipped byte: caught on reuse (also under --force of a downstream stage); with its timestamps forged, by flow verify', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  const keyA = lastRunState(project, 'diamond').stages.a!.key;
  const part1 = path.join(entryOuts(project, keyA), 'out', 'part1.txt');
  const flip = (keepTimes: boolean): void => {
    const ref = path.join(project.dir, 'times-ref');
    spawnSync('touch', ['-r', part1, ref]); // nanosecond-exact copy of the timestamps
    fs.chmodSync(part1, 0o644);
    const bytes = fs.readFileSync(part1);
    bytes[0] = bytes[0]! ^ 0x01;
    fs.writeFileSync(part1, bytes);
    if (keepTimes) spawnSync('touch', ['-r', ref, part1]);
  };
  flip(false);
  const forced = await runCliWithin(project, ['run', 'p.yaml', '--force', 'b']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /▶ a {2}running: entry damaged: outs\/out\/part1\.txt changed/);
  const b = fs.readFileSync(path.join(entryOuts(project, lastRunState(project, 'diamond').stages.b!.key), 'b.txt'), 'utf8');
  assert.equal(b, '1-1\n1-3\n', 'b was computed from the good part1');

  // Same size, same mtime: invisible to the metadata check, so flow verify re-reads the contents.
  flip(true);
  const cheap = await runCliWithin(project, ['run', 'p.yaml']);
  assert.match(cheap.stderr, /✔ a {2}cached/);
  const verify = await runCliWithin(project, ['verify', '--all']);
  assert.equal(verify.code, 1, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /damaged: [0-9a-f]{12} \(stage a\): entry damaged: outs\/out\/part1\.txt changed \(its content no longer matches/);
  assert.match(verify.stdout, /verified 4 entries .*: 1 damaged, moved aside/);
  const after = await runCliWithin(project, ['run', 'p.yaml']);
  assert.match(after.stderr, /▶ a {2}running/);
  const again = await runCliWithin(project, ['verify']);
  assert.equal(again.code, 0, again.stdout);
  assert.match(again.stdout, /verified 4 entries .*: all intact/);
});

test('SIGKILL during flow gc of an entry of thousands of files: no half-deleted entry; the next gc and run are clean', async () => {
  const project = await makeProject();
  project.write('big.yaml', `name: big\nstages:\n  many: { run: "mkdir -p \${outs.d} && cd \${outs.d} && seq 1 4000 | xargs touch", outs: { d: d/ } }\n`);
  assert.equal((await runCliWithin(project, ['run', 'big.yaml'])).code, 0);
  const key = lastRunState(project, 'big').stages.many!.key;
  fs.rmSync(project.runsDir, { recursive: true }); // nothing references the entry now
  const gc = spawnCli(project, ['gc']);
  const trash = path.join(project.cacheDir, 'trash');
  const entry = path.join(project.cacheDir, 'entries', key);
  // Kill it while it deletes: the entry has left entries/ and its files are going from trash/.
  while (fs.existsSync(entry) || !fs.existsSync(trash) || fs.readdirSync(trash).length === 0) {
    if (gc.child.exitCode !== null) break;
    await new Promise((r) => setImmediate(r));
  }
  gc.child.kill('SIGKILL');
  const killed = await gc.done;
  assert.equal(killed.signal, 'SIGKILL', `gc finished before the kill (${killed.stdout}); the entry is too small to catch it mid-delete`);
  assert.ok(!fs.existsSync(entry), 'the entry was renamed away whole before any file was deleted');
  assert.ok(fs.readdirSync(trash).length > 0, 'killed mid-delete: the rest lies in trash/');
  const run = await runCliWithin(project, ['run', 'big.yaml']);
  assert.equal(run.code, 0, run.stderr);
  const again = await runCliWithin(project, ['gc']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(fs.readdirSync(trash), []);
});

test('an entry folder without entry.json (left by an older gc) is replaced, never fatal; gc removes it too', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  const keyC = lastRunState(project, 'diamond').stages.c!.key;
  fs.rmSync(path.join(project.cacheDir, 'entries', keyC, 'entry.json'));
  const run = await runCliWithin(project, ['run', 'p.yaml']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /▶ c {2}running/);
  assert.ok(fs.existsSync(path.join(project.cacheDir, 'entries', keyC, 'entry.json')));
  // A half-deleted folder of a key no run references: gc deletes it.
  fs.mkdirSync(path.join(project.cacheDir, 'entries', 'f'.repeat(32), 'outs'), { recursive: true });
  const gc = await runCliWithin(project, ['gc']);
  assert.match(gc.stdout, new RegExp(`deleted .*entries/${'f'.repeat(32)}`));
});

test('a deleted or broken stage link is noticed and restored by show and by resume', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  const runDir = runDirs(project, 'diamond').at(-1)!;
  const link = path.join(runDir, 'stages', 'b');
  const target = fs.readlinkSync(link);
  fs.rmSync(link);
  const shown = await runCliWithin(project, ['show', 'latest']);
  assert.match(shown.stdout, /stages\/b: the link was deleted; restored it/);
  assert.equal(fs.readlinkSync(link), target);
  fs.rmSync(link);
  fs.symlinkSync('/nonexistent', link);
  const resumed = await runCliWithin(project, ['resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /stages\/b: the link was broken; restored it/);
  assert.equal(fs.readlinkSync(link), target);
  // An entry that is gone: resume recomputes it in the same run folder.
  const keyD = lastRunState(project, 'diamond').stages.d!.key;
  fs.rmSync(path.join(project.cacheDir, 'entries', keyD), { recursive: true });
  const verify = await runCliWithin(project, ['verify']);
  assert.equal(verify.code, 1, verify.stdout);
  assert.match(verify.stdout, /missing: [0-9a-f]{12}: the entry is gone/);
  const recomputed = await runCliWithin(project, ['resume']);
  assert.equal(recomputed.code, 0, recomputed.stderr);
  assert.match(recomputed.stderr, /stages\/d: its cache entry is gone/);
  assert.match(recomputed.stderr, /▶ d {2}running/);
  assert.equal(fs.readFileSync(path.join(runDir, 'stages', 'd', 'd.txt'), 'utf8'), '1-1\n1-3\n1-2\n');
});

test('what killed writers leave is cleared: temp files in run folders and locks/, run folders without state.json', async () => {
  const project = await makeProject();
  project.write('p.yaml', DIAMOND);
  assert.equal((await runCliWithin(project, ['run', 'p.yaml'])).code, 0);
  const runDir = runDirs(project, 'diamond').at(-1)!;
  const host = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  const dead = 2 ** 22 + 777;
  const stateTemp = path.join(runDir, `.state.json.tmp-${host}-${dead}-0123456789ab`);
  const lockTemp = path.join(project.cacheDir, 'locks', `.k.command.json.tmp-${host}-${dead}-0123456789ab`);
  const liveTemp = path.join(runDir, `.env.json.tmp-${host}-${process.pid}-0123456789ab`); // a write in progress
  for (const f of [stateTemp, lockTemp, liveTemp]) (fs.mkdirSync(path.dirname(f), { recursive: true }), fs.writeFileSync(f, '{'));
  const abandoned = path.join(project.runsDir, 'diamond', '20200101-000000-aaaa');
  fs.mkdirSync(abandoned);
  fs.writeFileSync(path.join(abandoned, 'config.yaml'), 'name: diamond\n');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(abandoned, old, old);
  const state = JSON.parse(fs.readFileSync(path.join(runDir, 'state.json'), 'utf8'));
  fs.writeFileSync(path.join(runDir, 'state.json'), JSON.stringify({ ...state, status: 'interrupted' }));
  assert.equal((await runCliWithin(project, ['resume'])).code, 0);
  assert.ok(!fs.existsSync(stateTemp), 'resume clears its run folder of a killed writer\'s temp files');
  assert.ok(fs.existsSync(liveTemp), 'a live writer\'s temp file is left alone');
  assert.equal((await runCliWithin(project, ['run', 'p.yaml', '--set', 'salt=2'])).code, 0);
  assert.ok(!fs.existsSync(lockTemp), 'taking a key lock clears half-written records in locks/');
  assert.ok(!fs.existsSync(abandoned), 'a new run clears folders of runs killed before their first state.json');
});

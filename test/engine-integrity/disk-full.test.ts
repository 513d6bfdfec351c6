// A full disk, on a real 30 MB tmpfs (mounted here as root; skipped with the reason where that is not
// permitted), for --cache and for --runs: a clear error naming the file, the stage and the free space, no
// stack trace, no temp file or lock left behind, no run folder that looks complete or still running; once
// space is freed, `flow resume` and `flow run` go on (they used to hang on a 0-byte lock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeProject } from '../engine/helpers.js';
import { DIAMOND, fillDisk, leftoverTemps, mountTmpfs, runCliWithin } from './helpers.js';

function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at .*\(.*:\d+:\d+\)$/m, `a stack trace reached the user:\n${stderr}`);
  assert.doesNotMatch(stderr, /Uncaught|node:internal/);
}

test('ENOSPC in --cache: the stage fails naming the file and the free space; after freeing space resume and run complete', async (t) => {
  const mount = mountTmpfs(30);
  if ('skip' in mount) return t.skip(mount.skip);
  try {
    const project = await makeProject();
    project.write('p.yaml', DIAMOND);
    const cache = path.join(mount.dir, 'cache');
    fs.mkdirSync(cache);
    const filler = fillDisk(mount.dir, 0);
    const full = await runCliWithin(project, ['run', 'p.yaml', '--cache', cache]);
    assert.equal(full.hung, false);
    assert.equal(full.code, 1, full.stderr);
    assert.match(full.stderr, /✖ a {2}failed: cannot write .*cache\/.*: no space left \(ENOSPC; \d+(\.\d)? [KMG]?B free on the filesystem of .*\); free some space/);
    noStackTrace(full.stderr);
    assert.deepEqual(leftoverTemps(cache), []);
    assert.deepEqual(fs.existsSync(path.join(cache, 'locks')) ? fs.readdirSync(path.join(cache, 'locks')) : [], [], 'no lock (0-byte or not) is left');
    assert.ok(!fs.existsSync(path.join(cache, 'entries')) || fs.readdirSync(path.join(cache, 'entries')).length === 0);

    fs.rmSync(filler);
    const resumed = await runCliWithin(project, ['resume', '--cache', cache]);
    assert.equal(resumed.hung, false, 'flow resume hung after the disk was freed');
    assert.equal(resumed.code, 0, resumed.stderr);
    const again = await runCliWithin(project, ['run', 'p.yaml', '--cache', cache]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /✔ d {2}cached/);
  } finally {
    mount.unmount();
  }
});

test('ENOSPC in --runs: no crash, no temp file, no run folder left "running"; a clear error; fine once space is freed', async (t) => {
  const mount = mountTmpfs(30);
  if ('skip' in mount) return t.skip(mount.skip);
  try {
    const project = await makeProject();
    project.write('p.yaml', DIAMOND);
    const runs = path.join(mount.dir, 'runs');
    // 8 KB: too little for state.json; 16 KB: the log fills it; 20 KB: state.json fails mid-run.
    for (const leave of [8 * 1024, 16 * 1024, 20 * 1024]) {
      fs.rmSync(runs, { recursive: true, force: true });
      const filler = fillDisk(mount.dir, leave);
      const r = await runCliWithin(project, ['run', 'p.yaml', '--runs', runs]);
      assert.equal(r.hung, false);
      noStackTrace(r.stderr);
      assert.deepEqual(leftoverTemps(runs), [], `left with ${leave} bytes free`);
      for (const pipeline of fs.existsSync(runs) ? fs.readdirSync(runs) : []) {
        for (const id of fs.readdirSync(path.join(runs, pipeline))) {
          const stateFile = path.join(runs, pipeline, id, 'state.json');
          assert.ok(fs.existsSync(stateFile), `run folder ${id} without state.json was left (${leave} bytes free)`);
          const listed = await runCliWithin(project, ['runs', '--json', '--runs', runs]);
          assert.equal(listed.code, 0, listed.stderr);
          const status = (JSON.parse(listed.stdout) as { status: string }[])[0]!.status;
          assert.notEqual(status, 'running', `a run left "running" (${leave} bytes free)`);
        }
      }
      if (r.code !== 0) assert.match(r.stderr, /no space left \(ENOSPC/);
      fs.rmSync(filler);
    }
    const ok = await runCliWithin(project, ['run', 'p.yaml', '--runs', runs]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    mount.unmount();
  }
});

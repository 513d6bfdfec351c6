// Training checkpoints after crashes: partial temp folders of a dead writer are removed, and when every
// checkpoint is refused the status line says so ("starting over: no usable checkpoint").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadLatestCheckpoint, writeCheckpoint } from '../../lib/train/checkpoint.js';
import { makeTempDir } from '../helpers/paths.js';

const weights = (v: number) => ({ weights: [{ name: 'w', shape: [2], values: new Float32Array([v, v + 1]) }] });

test('partial checkpoint temp folders are removed; both checkpoints refused → "starting over: no usable checkpoint"', async () => {
  const dir = makeTempDir();
  // What a SIGKILL mid-write leaves (another pid's temp folder with a half-written group).
  fs.mkdirSync(path.join(dir, '.tmp-ckpt-00000001-99999'));
  fs.writeFileSync(path.join(dir, '.tmp-ckpt-00000001-99999', 'weights.bin'), 'half');
  await writeCheckpoint(dir, { step: 1 }, weights(1));
  await writeCheckpoint(dir, { step: 2 }, weights(2));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['ckpt-00000001', 'ckpt-00000002']);

  fs.mkdirSync(path.join(dir, '.tmp-ckpt-00000003-99999'));
  const lines: string[] = [];
  const refuseAll = (): void => {
    throw new Error('written for another model');
  };
  assert.equal(await loadLatestCheckpoint(dir, refuseAll, (l) => lines.push(l)), null);
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /refused checkpoint .*ckpt-00000002: written for another model/);
  assert.equal(lines[2], 'starting over: no usable checkpoint (2 refused)');
  assert.ok(!fs.existsSync(path.join(dir, '.tmp-ckpt-00000003-99999')), 'a partial checkpoint is removed on load');

  // Nothing to refuse: no "starting over" line (a first run says nothing about checkpoints).
  const empty = makeTempDir();
  const quiet: string[] = [];
  assert.equal(await loadLatestCheckpoint(empty, () => undefined, (l) => quiet.push(l)), null);
  assert.deepEqual(quiet, []);
});

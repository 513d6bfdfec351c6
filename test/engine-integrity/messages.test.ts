// Messages that tell the truth: a damaged TFRecord shard that tfrecord.read hard-linked into its entry is named
// as that stage's file (re-running the stage that first wrote it would not replace the shared inode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ingestCarvana, defaultCarvanaIngestParams } from '../../lib/datasets/carvana/ingest.js';
import { makeProject } from '../engine/helpers.js';
import { samplesDir } from '../helpers/paths.js';
import { writeCarvanaShards } from '../carvana/records.js';
import { lastRunState, runCliWithin } from './helpers.js';

test('a damaged hard-linked shard: the failure names the stage whose entry holds it; flow verify finds every entry sharing it, the next run recomputes them', async () => {
  const project = await makeProject();
  const root = path.join(samplesDir, 'carvana');
  const index = (await ingestCarvana(root, defaultCarvanaIngestParams)).index;
  const shards = path.join(project.dir, 'shards');
  await writeCarvanaShards(root, index.samples.slice(0, 3), shards);
  project.write('p.yaml', `name: linked\nstages:\n  records: { run: "cp -r shards/. \${outs.d}", deps: [shards], outs: { d: d/ } }\n  dataset: { kind: tfrecord.read, inputs: { records: "\${stages.records.outs.d}" } }\n  check: { kind: tfrecord.read, inputs: { records: "\${stages.dataset.outs.data}" } }\n`);
  const first = await runCliWithin(project, ['run', 'p.yaml'], 60_000);
  assert.equal(first.code, 0, first.stderr);
  const keyDataset = lastRunState(project, 'linked').stages.dataset!.key;
  const dataDir = path.join(project.cacheDir, 'entries', keyDataset, 'outs', 'data');
  const shard = fs.readdirSync(dataDir).find((n) => n.endsWith('.gz') || n.includes('tfrecord'))!;
  const file = path.join(dataDir, shard);
  // Damage it in place, timestamps kept (so only a full read notices): the input's inode is the same file.
  const ref = path.join(project.dir, 'times-ref');
  spawnSync('touch', ['-r', file, ref]);
  fs.chmodSync(file, 0o644);
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0xff;
  fs.writeFileSync(file, bytes);
  spawnSync('touch', ['-r', ref, file]);
  const failed = await runCliWithin(project, ['run', 'p.yaml', '--force', 'check'], 60_000);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, /✖ check {2}failed: .*\[that file is in the cache entry of stage dataset .*`flow run --force dataset`/);
  // records, dataset and check all hold that inode: a full verify finds all three.
  const verify = await runCliWithin(project, ['verify', '--all'], 60_000);
  assert.equal(verify.code, 1, verify.stdout);
  assert.deepEqual([...verify.stdout.matchAll(/\(stage (\w+)\)/g)].map((m) => m[1]).sort(), ['check', 'dataset', 'records']);
  const fixed = await runCliWithin(project, ['run', 'p.yaml'], 60_000);
  assert.equal(fixed.code, 0, fixed.stderr);
});

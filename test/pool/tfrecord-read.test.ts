// tfrecord.read's verification on the worker pool: verification.json is byte-identical with 1 and 2 threads, and
// a damaged record fails with the same error (file, record, byte offset) on either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, samplesDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';
import writeStage from '../../stages/tfrecord-write/index.js';
import { verifyAndLink } from '../../stages/tfrecord-read/index.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';

async function carvanaShards(count: number): Promise<string> {
  const dir = makeTempDir();
  const root = path.join(samplesDir, 'carvana');
  const samples = fs.readdirSync(path.join(root, 'train')).sort().slice(0, count).map((name) => {
    const id = name.replace(/\.jpg$/, '');
    return { id, group: id.replace(/_\d+$/, ''), image: `train/${name}`, label: `train_masks/${id}_mask.gif` };
  });
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ dataset: 'carvana', root, labels: CARVANA_LABELS, samples, skipped: [], files: {} }));
  const shards = path.join(dir, 'shards');
  const { ctx } = stageContext(writeStage, { shard_size: 2, shard_bytes: null, compression: 'gzip' }, { samples: path.join(dir, 'index.json') }, { outs: { shards } });
  await writeStage.run(ctx);
  return shards;
}

test('verification on 1 and 2 threads: identical verification.json, identical error for a damaged record', async () => {
  const shards = await carvanaShards(7);
  const outputs = [];
  for (const workers of [1, 2]) {
    const out = path.join(makeTempDir(), 'data');
    let units = 0;
    await verifyAndLink(shards, out, { workers, progress: { advance: (n) => (units += n), stop: () => undefined } });
    assert.equal(units, 7, 'progress counts every record');
    outputs.push(fs.readFileSync(path.join(out, 'verification.json'), 'utf8'));
  }
  assert.equal(outputs[1], outputs[0]);
  assert.equal(JSON.parse(outputs[0]!).records, 7);

  // Damage the third shard (gzip): both pool sizes name the same file and record.
  const third = path.join(shards, 'part-00002-of-00004.tfrecord.gz');
  const bytes = fs.readFileSync(third);
  bytes[bytes.length - 12]! ^= 0x55;
  fs.writeFileSync(third, bytes);
  const errors: string[] = [];
  for (const workers of [1, 2]) {
    const out = path.join(makeTempDir(), 'data');
    await assert.rejects(verifyAndLink(shards, out, { workers }), (err: Error) => (errors.push(err.message), true));
    assert.equal(fs.existsSync(path.join(out, 'verification.json')), false);
  }
  assert.match(errors[0]!, /part-00002-of-00004\.tfrecord\.gz: record \d+ at byte \d+: /);
  assert.equal(errors[1], errors[0]);
});

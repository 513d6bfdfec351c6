// bench/run-all: the shared table printer, the name filters, and one real bench (tfrecord --quick) run
// through the child-process protocol end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable, median } from '../../bench/table.js';
import { BENCHES, runAll } from '../../bench/run-all.js';

const runAllScript = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', `run-all${path.extname(fileURLToPath(import.meta.url))}`);

test('formatTable: Markdown with numeric columns right-aligned and notes as a list', () => {
  const text = formatTable({
    title: 'T',
    columns: ['what', 'flow', 'ratio'],
    rows: [
      ['write', '881 MB/s', '101%'],
      ['read+verify long label', '1446 MB/s', '41%'],
    ],
    notes: ['baseline: fs'],
  });
  const lines = text.split('\n');
  assert.equal(lines[0], '### T');
  assert.equal(lines[2], '| what                   |      flow | ratio |');
  assert.equal(lines[3], '|------------------------|----------:|------:|');
  assert.equal(lines[4], '| write                  |  881 MB/s |  101% |');
  assert.equal(lines.at(-1), '- baseline: fs');
});

test('median of odd and even lists', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('runAll rejects a filter that names no bench, listing the benches', async () => {
  await assert.rejects(runAll({ quick: true, filters: ['no-such-bench'] }), (error: Error) => {
    assert.match(error.message, /no bench matches no-such-bench/);
    for (const name of BENCHES) assert.ok(error.message.includes(name));
    return true;
  });
});

test('run-all --quick tfrecord prints the tfrecord tables with baselines and ratios', () => {
  const child = spawnSync(process.execPath, [...process.execArgv, runAllScript, '--quick', 'tfrecord'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /## tfrecord \(\d+ s\)/);
  assert.match(child.stdout, /### TFRecord write \/ read\+verify throughput/);
  assert.match(child.stdout, /\| write 4 KiB records x \d+ .*\| +\d+ MB\/s \| fs \d+ MB\/s +\| +\d+% \|/);
  assert.match(child.stdout, /### tfrecord.write peak RSS/);
  assert.doesNotMatch(child.stdout, /## engine|## train/);
});

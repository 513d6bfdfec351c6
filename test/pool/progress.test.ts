// Data-stage progress (lib/train/progress.ts createItemProgress): count, total, rate and ETA in plain lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createItemProgress } from '../../lib/train/progress.js';

test('item progress prints count, rate and ETA lines when not on a terminal', () => {
  const lines: string[] = [];
  const progress = createItemProgress('tfrecord.read', 10, 'records', false, (line) => lines.push(line), 0);
  progress.advance(4);
  progress.advance(6);
  progress.stop();
  assert.match(lines[0]!, /^tfrecord\.read 4\/10 records [\d.]+\/s ETA (\d+s|\d+m\d\ds|\?)$/);
  assert.match(lines[1]!, /^tfrecord\.read 10\/10 records [\d.]+\/s ETA 0s$/);
  assert.equal(lines.length, 3, 'and a last line at the end');
});

// The --sweep grammar: value lists parsed like --set, integer and log/lin ranges, the grid's order, and every
// problem reported at once with the column in the --sweep argument.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSweeps } from '../../engine/sweeps/grammar.js';
import { PipelineError } from '../../engine/pipeline/diagnostics.js';

function values(arg: string): unknown[] {
  return parseSweeps([arg]).axes[0]!.values.map((v) => v.value);
}

test('lists and ranges expand to typed values', () => {
  assert.deepEqual(values('train.lr=1e-4,3e-4,1e-3'), [0.0001, 0.0003, 0.001]);
  assert.deepEqual(values('train.loss=bce,bce_dice'), ['bce', 'bce_dice']);
  assert.deepEqual(values('train.input_size=[96, 96],[128,128]'), [[96, 96], [128, 128]], 'commas inside brackets do not split');
  assert.deepEqual(values('train.depth=1..4'), [1, 2, 3, 4]);
  assert.deepEqual(values('train.epochs=0..20:5'), [0, 5, 10, 15, 20]);
  assert.deepEqual(values('train.lr=1e-4:1e-2:log3'), [0.0001, 0.001, 0.01]);
  assert.deepEqual(values('train.dropout=0:1:lin5'), [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(values('train.depth=1..2,8'), [1, 2, 8], 'ranges and values mix');
  assert.deepEqual(values('tag="1..4"'), ['1..4'], 'a quoted range is a string');
  assert.deepEqual(values('+train.warmup=1,2'), [1, 2]);
});

test('the grid: first axis outermost, overrides as typed', () => {
  const { combinations } = parseSweeps(['train.lr=1e-4,1e-3', 'train.loss=bce,bce_dice,dice']);
  assert.equal(combinations.length, 6);
  assert.deepEqual(combinations.map((c) => c.overrides.join(' ')), [
    'train.lr=1e-4 train.loss=bce', 'train.lr=1e-4 train.loss=bce_dice', 'train.lr=1e-4 train.loss=dice',
    'train.lr=1e-3 train.loss=bce', 'train.lr=1e-3 train.loss=bce_dice', 'train.lr=1e-3 train.loss=dice',
  ]);
  assert.deepEqual(combinations[4]!.params, { 'train.lr': 0.001, 'train.loss': 'bce_dice' });
  assert.deepEqual(parseSweeps(['train.lr=1e-4:1e-2:log3']).combinations.map((c) => c.overrides[0]), ['train.lr=0.0001', 'train.lr=0.001', 'train.lr=0.01']);
});

test('every problem at once, with the column in the --sweep argument', () => {
  let error: PipelineError | undefined;
  try {
    parseSweeps(['train.lr=1e-4,,3e-4', 'train.depth=4..1', 'train.lr=1..2', 'lr', 'x=0:1:log3', 'y=1,[2', 'z=1,1'], ['train.depth=3']);
  } catch (err) {
    error = err as PipelineError;
  }
  assert.ok(error instanceof PipelineError);
  const lines = error.message.split('\n');
  assert.ok(lines.includes('<--sweep>:1:15: error: --sweep train.lr=1e-4,,3e-4: an empty value (hint: separate values with single commas: a,b,c)'), error.message);
  assert.ok(lines.some((l) => l.startsWith('<--sweep>:2:13: error: --sweep train.depth=4..1: range 4..1 is empty')), error.message);
  assert.ok(lines.some((l) => l.startsWith('<--sweep>:2:1: error: --sweep train.depth=4..1: train.depth is also given with --set')), error.message);
  assert.ok(lines.some((l) => l.startsWith('<--sweep>:3:1: error: --sweep train.lr=1..2: train.lr is already swept by --sweep number 1')), error.message);
  assert.ok(lines.some((l) => l.startsWith('<--sweep>:4:1: error: --sweep lr: expected `key.path=VALUES`')), error.message);
  assert.ok(lines.some((l) => l.startsWith('<--sweep>:5:3: error: --sweep x=0:1:log3: range 0:1:log3: log spacing needs positive ends')), error.message);
  assert.ok(lines.some((l) => /^<--sweep>:6:\d+: error: --sweep y=1,\[2: the value is not valid YAML/.test(l)), error.message);
  assert.ok(lines.some((l) => l.startsWith('<--sweep>:7:3: error: --sweep z=1,1: the value 1 is listed twice')), error.message);
  assert.throws(() => parseSweeps(['a=1..200', 'b=1..200']), /the sweep has 40000 runs/);
});

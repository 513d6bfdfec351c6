// Group split: deterministic under the seed, independent of input order, never splits a group.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitGroups, splitItems } from '../../lib/preprocess/split.js';

const cars = Array.from({ length: 24 }, (_, i) => `car${String(i).padStart(2, '0')}`);
const items = cars.flatMap((car) => ['01', '05', '09', '13'].map((angle) => ({ id: `${car}_${angle}`, group: car })));

test('splitGroups is deterministic, order-independent, disjoint and complete', () => {
  const a = splitGroups(cars, 0.2, 42);
  const b = splitGroups([...cars].reverse(), 0.2, 42);
  assert.deepEqual(a, b);
  assert.equal(a.val.length, 5);
  assert.equal(a.train.length, 19);
  assert.deepEqual([...a.train, ...a.val].sort(), cars);
  assert.notDeepEqual(splitGroups(cars, 0.2, 43).val, a.val);
});

test('edge cases: one validation group at minimum, never all, val_fraction 0 keeps everything in train', () => {
  assert.equal(splitGroups(['a', 'b', 'c'], 0.05, 1).val.length, 1);
  assert.equal(splitGroups(['a', 'b'], 0.9, 1).val.length, 1);
  assert.deepEqual(splitGroups(['a', 'b'], 0, 1), { train: ['a', 'b'], val: [] });
  assert.throws(() => splitGroups(cars, 1, 1), /val_fraction/);
});

test('splitItems keeps every angle of a car on one side', () => {
  const split = splitItems(items, 0.25, 7);
  assert.equal(split.trainIds.length + split.valIds.length, items.length);
  const valGroups = new Set(split.val);
  for (const id of split.valIds) assert.ok(valGroups.has(id.split('_')[0]!));
  for (const id of split.trainIds) assert.ok(!valGroups.has(id.split('_')[0]!));
  assert.equal(split.valIds.length, split.val.length * 4);
  assert.equal(split.seed, 7);
});

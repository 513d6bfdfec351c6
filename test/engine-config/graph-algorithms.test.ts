// The small algorithms under the loader: typo distance and suggestions, topological order, cycles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editDistance, suggest } from '../../engine/pipeline/suggest.js';
import { findCycles, topologicalOrder, transitiveDependents } from '../../engine/pipeline/dag.js';

test('editDistance counts a transposition as one edit', () => {
  assert.equal(editDistance('epochs', 'epochs'), 0);
  assert.equal(editDistance('epcohs', 'epochs'), 1);
  assert.equal(editDistance('epoch', 'epochs'), 1);
  assert.equal(editDistance('lr', 'batch_size'), 10);
  assert.equal(editDistance('', 'abc'), 3);
});

test('suggest offers only plausible typos', () => {
  assert.equal(suggest('epcohs', ['lr', 'epochs', 'seed']), 'epochs');
  assert.equal(suggest('shard-size', ['shard_size']), 'shard_size');
  assert.equal(suggest('xyz', ['epochs', 'seed']), undefined);
  assert.equal(suggest('lr', ['lr']), undefined, 'an exact match is no suggestion');
});

const graph = (edges: Record<string, string[]>) => new Map(Object.entries(edges));

test('topologicalOrder keeps file order where it is free', () => {
  assert.deepEqual(topologicalOrder(['c', 'b', 'a'], graph({ c: ['a'], b: [] })), ['b', 'a', 'c']);
  assert.deepEqual(topologicalOrder(['x', 'y'], graph({})), ['x', 'y']);
});

test('findCycles finds each cycle once, as a closed path from its first stage in the file', () => {
  const stages = ['a', 'b', 'c', 'd', 'e'];
  const cycles = findCycles(stages, graph({ a: ['b'], b: ['c'], c: ['a'], d: ['d'], e: ['a'] }));
  assert.deepEqual(cycles, [['a', 'b', 'c', 'a'], ['d', 'd']]);
  assert.deepEqual(findCycles(stages, graph({ b: ['a'], c: ['b'] })), []);
});

test('transitiveDependents follows edges downstream only', () => {
  const ups = graph({ b: ['a'], c: ['b'], d: ['a'] });
  assert.deepEqual(transitiveDependents(['a', 'b', 'c', 'd'], ups, ['b']), ['b', 'c']);
  assert.deepEqual(transitiveDependents(['a', 'b', 'c', 'd'], ups, ['a']), ['a', 'b', 'c', 'd']);
});

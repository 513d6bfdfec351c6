// Property tests: param resolution is independent of YAML spelling and key order; --set parsing round-trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { Rng } from '../../lib/rng.js';
import type { JsonValue } from '../../engine/stage.js';
import { canonicalJson, loadPipelineFromText, parseOverride } from '../../engine/pipeline/index.js';
import { toyCatalog } from './toy-catalog.js';

const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,7}$/);
/** Plain-safe strings: never read as a number, bool or null, never holding `${`. */
const text = fc.stringMatching(/^s[a-z _]{0,10}[a-z]$/);
const number = fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true }));
const scalar = fc.oneof(number, fc.boolean(), fc.constant(null), text);
const tree = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('list'), tie('map')),
  list: fc.array(tie('value'), { maxLength: 4 }),
  map: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
})).map as fc.Arbitrary<Record<string, JsonValue>>;

/** Emits `value` as YAML, choosing spellings at random: flow or block, quoted or plain keys, number forms, key order. */
function emit(value: JsonValue, indent: string, rng: Rng, inFlow: boolean): string {
  const pick = <T>(options: T[]): T => options[Math.floor(rng.next() * options.length)]!;
  if (value === null) return pick(['null', '~', 'Null']);
  if (typeof value === 'boolean') return pick(value ? ['true', 'True'] : ['false', 'FALSE']);
  if (typeof value === 'string') return pick([value, JSON.stringify(value), `'${value}'`]);
  if (typeof value === 'number') {
    const spellings = [String(value), value.toExponential(), value.toExponential(16)];
    if (Number.isInteger(value) && Math.abs(value) < 1e15) spellings.push(`${value}.0`, `${value}.000e0`);
    return pick(spellings);
  }
  const entries: [string | null, JsonValue][] = Array.isArray(value) ? value.map((v) => [null, v]) : Object.entries(value);
  for (let i = entries.length - 1; i > 0 && !Array.isArray(value); i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  const keyText = (k: string) => pick([k, JSON.stringify(k), `'${k}'`]);
  if (entries.length === 0 || inFlow || rng.next() < 0.5) {
    const items = entries.map(([k, v]) => (k === null ? '' : `${keyText(k)}: `) + emit(v, indent, rng, true));
    return Array.isArray(value) ? `[${items.join(', ')}]` : `{${items.join(', ')}}`;
  }
  const inner = `${indent}  `;
  return entries
    .map(([k, v]) => {
      const child = emit(v, inner, rng, false);
      const block = child.startsWith('\n');
      return k === null ? `\n${indent}-${block ? child.replace(/^\n\s*/, ' ') : ` ${child}`}` : `\n${indent}${keyText(k)}:${block ? child : ` ${child}`}`;
    })
    .join('');
}

function pipelineText(params: Record<string, JsonValue>, rng: Rng): string {
  return `name: prop\nparams: ${emit(params, '  ', rng, false)}\nstages:\n  only: { run: "true" }\n`;
}

test('param resolution is identical whatever the key order and YAML spelling', () => {
  fc.assert(
    fc.property(tree, fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), (params, seedA, seedB) => {
      const load = (seed: number) =>
        loadPipelineFromText(pipelineText(params, new Rng(seed)), 'prop.yaml', { baseDir: '/tmp', catalog: toyCatalog }).params;
      const a = canonicalJson(load(seedA));
      assert.equal(a, canonicalJson(load(seedB)));
      assert.equal(a, canonicalJson(params));
    }),
    { numRuns: 150 },
  );
});

test('canonicalJson: equal for 1.0e-3, 1e-3 and 0.001 and any key order', () => {
  const spellings = ['1.0e-3', '1e-3', '0.001', '0.0010', '1E-3'];
  const texts = spellings.map((lr, i) =>
    i % 2 === 0 ? `name: p\nparams: { train: { lr: ${lr}, epochs: 2 } }\nstages: { s: { run: "true" } }` : `name: p\nparams:\n  train:\n    epochs: 2\n    "lr": ${lr}\nstages: { s: { run: "true" } }`,
  );
  const canon = texts.map((t) => canonicalJson(loadPipelineFromText(t, 'p.yaml', { baseDir: '/tmp', catalog: toyCatalog }).params));
  assert.equal(new Set(canon).size, 1);
  assert.equal(canon[0], '{"train":{"epochs":2,"lr":0.001}}');
  assert.equal(canonicalJson({ b: [1, { d: -0, c: 'x' }], a: null }), '{"a":null,"b":[1,{"c":"x","d":0}]}');
  assert.throws(() => canonicalJson({ x: Number.NaN }), /\$\.x is NaN/);
});

const segment = fc.oneof({ weight: 3, arbitrary: key }, { weight: 1, arbitrary: fc.nat({ max: 20 }) });
const overridePath = fc.tuple(key, fc.array(segment, { maxLength: 4 })).map(([first, rest]) => [first, ...rest]);

test('--set parsing round-trips generated paths and YAML values', () => {
  fc.assert(
    fc.property(overridePath, fc.jsonValue(), fc.boolean(), fc.constantFrom('block', 'flow') as fc.Arbitrary<'block' | 'flow'>, (segments, value, add, style) => {
      const valueText = stringify(value, { collectionStyle: style, lineWidth: 0 }).replace(/\n$/, '');
      const arg = `${add ? '+' : ''}${segments.join('.')}=${valueText}`;
      const parsed = parseOverride(arg);
      assert.deepEqual(parsed.path, segments[0] === 'stages' ? segments : ['params', ...segments]);
      assert.equal(parsed.add, add);
      assert.equal(canonicalJson(parsed.value), canonicalJson(value as JsonValue));
    }),
    { numRuns: 300 },
  );
});

test('--set values are parsed as YAML', () => {
  assert.deepEqual(parseOverride('train.lr=1e-4'), { path: ['params', 'train', 'lr'], value: 0.0001, add: false });
  assert.deepEqual(parseOverride('+train.warmup=2').add, true);
  assert.deepEqual(parseOverride('input_size=[64, 64]').value, [64, 64]);
  assert.deepEqual(parseOverride('input_size.0=96').path, ['params', 'input_size', 0]);
  assert.deepEqual(parseOverride('opt={a: 1}').value, { a: 1 });
  assert.equal(parseOverride('x=null').value, null);
  assert.equal(parseOverride('x=true').value, true);
  assert.equal(parseOverride('x=adam').value, 'adam');
  assert.equal(parseOverride('x=a=b').value, 'a=b');
  assert.deepEqual(parseOverride('stages.records.params.shard_size=32').path, ['stages', 'records', 'params', 'shard_size']);
});

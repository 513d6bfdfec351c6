// Content digests, the stat cache, fingerprints and their explanations, cache commit races, run ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { makeTempDir } from '../helpers/paths.js';
import { hashFileContent, hashPath, StatCache } from '../../engine/hashing.js';
import { changedPart, explainMiss, fingerprintKey, type Fingerprint } from '../../engine/fingerprint.js';
import { Cache } from '../../engine/cache.js';
import { createRunDir, newRunId } from '../../engine/run-folder.js';

test('file digests: known xxhash128 value, content-only, streaming across chunk boundaries', async () => {
  const dir = makeTempDir();
  const empty = path.join(dir, 'empty');
  fs.writeFileSync(empty, '');
  // xxh128 of the empty input (reference value of the xxHash project).
  assert.equal(await hashFileContent(empty), '99aa06d3014798d86001c324468d497f');
  const big = path.join(dir, 'big.bin');
  const bytes = Buffer.alloc(9 * 1024 * 1024 + 7, 0);
  for (let i = 0; i < bytes.length; i += 4099) bytes[i] = i % 251;
  fs.writeFileSync(big, bytes);
  const whole = await hashPath(big);
  fs.chmodSync(big, 0o600); // mode is not content
  assert.equal(await hashPath(big), whole);
  bytes[bytes.length - 1] = 1;
  fs.writeFileSync(big, bytes);
  assert.notEqual(await hashPath(big), whole);
});

test('folder digests: paths and contents count, order of creation and mtimes do not; links by target', async () => {
  const a = makeTempDir();
  const b = makeTempDir();
  fs.mkdirSync(path.join(a, 'sub'));
  fs.writeFileSync(path.join(a, 'sub', 'x.txt'), 'x');
  fs.writeFileSync(path.join(a, 'y.txt'), 'y');
  fs.writeFileSync(path.join(b, 'y.txt'), 'y');
  fs.mkdirSync(path.join(b, 'sub'));
  fs.writeFileSync(path.join(b, 'sub', 'x.txt'), 'x');
  fs.utimesSync(path.join(b, 'y.txt'), new Date(0), new Date(0));
  assert.equal(await hashPath(a), await hashPath(b));
  fs.renameSync(path.join(b, 'sub', 'x.txt'), path.join(b, 'sub', 'z.txt'));
  assert.notEqual(await hashPath(a), await hashPath(b));
  fs.symlinkSync('y.txt', path.join(a, 'link'));
  const withLink = await hashPath(a);
  fs.rmSync(path.join(a, 'link'));
  fs.symlinkSync('sub/x.txt', path.join(a, 'link'));
  assert.notEqual(await hashPath(a), withLink);
  await assert.rejects(hashPath(path.join(a, 'missing')), /does not exist/);
});

test('the stat cache skips re-reading unchanged files and persists across instances', async () => {
  const dir = makeTempDir();
  const file = path.join(dir, 'data.bin');
  fs.writeFileSync(file, 'aaaa');
  const cacheFile = path.join(dir, 'stat-cache.json');
  const first = new StatCache(cacheFile);
  const digest = await hashPath(file, first);
  first.save();
  // A remembered digest for the file's current (size, mtime, inode) is used without reading the file.
  const second = new StatCache(cacheFile);
  assert.equal(await hashPath(file, second), digest);
  second.remember(file, fs.statSync(file, { bigint: true }), 'remembered');
  assert.equal(await hashPath(file, second), 'f:remembered');
  fs.writeFileSync(file, 'bbbb');
  // Touching mtime changes the stat key, so the file is re-read — and the digest follows the content.
  const later = new Date(Date.now() + 10_000);
  fs.utimesSync(file, later, later);
  assert.notEqual(await hashPath(file, second), digest);
  fs.writeFileSync(file, 'aaaa');
  fs.utimesSync(file, later, later);
  const third = new StatCache(cacheFile);
  assert.equal(await hashPath(file, third), digest);
});

function fingerprint(over: Partial<Fingerprint> = {}): Fingerprint {
  return {
    fingerprintVersion: 1,
    kind: 'train',
    version: '1',
    codeDigest: 'c1',
    codeFiles: { 'stages/train/index.ts': 'a', 'stages/train/loop.ts': 'b' },
    command: null,
    params: { lr: 0.001, epochs: 3 },
    outputs: { model: { type: 'dir', path: 'model' } },
    inputs: { data: 'd:a1b2c3d4e5f6a7b8c9', hparams: 'f:0000' },
    platform: {},
    ...over,
  };
}

test('explainMiss names exactly what changed', () => {
  const prev = fingerprint();
  assert.deepEqual(explainMiss(prev, fingerprint({ params: { lr: 0.0001, epochs: 3 } }), 'train'), ['param train.lr: 0.001 → 0.0001']);
  assert.deepEqual(explainMiss(prev, fingerprint({ inputs: { data: 'd:c3d4e5f6a7b8c9d0e1', hparams: 'f:0000' } })), ['input data changed (digest a1b2c3d4e5f6… → c3d4e5f6a7b8…)']);
  assert.deepEqual(explainMiss(prev, fingerprint({ codeDigest: 'c2', codeFiles: { 'stages/train/index.ts': 'a', 'stages/train/loop.ts': 'B' } })), ['code of stages/train/loop.ts changed']);
  assert.deepEqual(explainMiss(prev, fingerprint({ version: '2' })), ['version 1 → 2']);
  assert.deepEqual(explainMiss(prev, fingerprint({ params: { lr: 0.001 } }), 's'), ['param s.epochs: 3 → (absent)']);
  assert.deepEqual(explainMiss(prev, prev), []);
  assert.equal(changedPart('echo 3 >> out', 'echo 4 >> out'), 'echo 3 >> out → echo 4 >> out');
});

test('fingerprint keys: key order irrelevant, codeFiles only explain, every keyed field matters', async () => {
  await fc.assert(
    fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.boolean())), async (params) => {
      const reversed = Object.fromEntries(Object.entries(params).reverse());
      assert.equal(await fingerprintKey(fingerprint({ params })), await fingerprintKey(fingerprint({ params: reversed })));
    }),
    { numRuns: 50 },
  );
  const base = await fingerprintKey(fingerprint());
  assert.equal(await fingerprintKey(fingerprint({ codeFiles: {} })), base);
  assert.match(base, /^[0-9a-f]{32}$/);
  for (const change of [{ kind: 'x' }, { version: '2' }, { codeDigest: 'c9' }, { command: 'x' }, { params: { lr: 0.001, epochs: 4 } }, { inputs: { data: 'd:0' } }, { platform: { gpu: 'x' } }] as Partial<Fingerprint>[]) {
    assert.notEqual(await fingerprintKey(fingerprint(change)), base, JSON.stringify(change));
  }
});

test('cache commit: a second committer of one key keeps the first entry; forced commits replace it', async () => {
  const cache = new Cache(makeTempDir());
  const fp = fingerprint();
  const key = await fingerprintKey(fp);
  const outputs = { model: { type: 'file' as const, path: 'model' } };
  const t1 = cache.makeTemp(key);
  fs.writeFileSync(path.join(t1, 'outs', 'model'), 'one');
  assert.equal(cache.readEntry(key), undefined);
  const e1 = await cache.commit(t1, fp, key, { stage: 's', pipeline: 'p', durationMs: 1 }, outputs, false);
  // A second computation of the key (the next lock holder, which did not look for the entry) commits too.
  const t2 = cache.makeTemp(key);
  fs.writeFileSync(path.join(t2, 'outs', 'model'), 'two');
  const e2 = await cache.commit(t2, fp, key, { stage: 's', pipeline: 'p', durationMs: 1 }, outputs, false);
  assert.deepEqual(e2, e1);
  assert.equal(fs.readFileSync(cache.outputPath(key, e1.outputs.model!), 'utf8'), 'one');
  assert.ok(!fs.existsSync(t2));
  const t3 = cache.makeTemp(key);
  fs.writeFileSync(path.join(t3, 'outs', 'model'), 'three');
  await cache.commit(t3, fp, key, { stage: 's', pipeline: 'p', durationMs: 1 }, outputs, true);
  assert.equal(fs.readFileSync(cache.outputPath(key, e1.outputs.model!), 'utf8'), 'three');
  const t4 = cache.makeTemp('other');
  await assert.rejects(cache.commit(t4, fp, 'other', { stage: 's', pipeline: 'p', durationMs: 1 }, outputs, false), /output model \(model\) was not created/);
});

test('run ids sort by time and stay unique within one second', () => {
  const ids = new Set<string>();
  const dir = makeTempDir();
  for (let i = 0; i < 200; i++) ids.add(createRunDir(dir, 'p').runId);
  assert.equal(ids.size, 200);
  assert.equal(fs.readdirSync(path.join(dir, 'p')).length, 200);
  assert.ok(newRunId(new Date('2024-01-02T03:04:05Z')) < newRunId(new Date('2024-01-02T03:04:06Z')));
  assert.match(newRunId(new Date('2024-01-02T03:04:05Z')), /^20240102-030405-[a-z2-7]{4}$/);
});

test('equivalent YAML spellings of params give one key', async () => {
  const { parse } = await import('yaml');
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: -9, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.boolean(), async (exponent, mantissa, flag) => {
      const spellings = [`${mantissa}e${exponent}`, `${mantissa}.0e${exponent}`, `${mantissa}.0E${exponent >= 0 ? '+' : ''}${exponent}`, String(Number(`${mantissa}e${exponent}`))];
      const keys = new Set<string>();
      for (const spelled of spellings) {
        const block = parse(`lr: ${spelled}\nflag: ${flag ? 'true' : 'false'}\nsize: [96, 96]\n`);
        const flow = parse(`{ size: [ 96,96 ], flag: ${flag}, lr: ${spelled} }`);
        keys.add(await fingerprintKey(fingerprint({ params: block })));
        keys.add(await fingerprintKey(fingerprint({ params: flow })));
      }
      assert.equal(keys.size, 1, spellings.join(' / '));
    }),
    { numRuns: 60 },
  );
});

test('code digests follow imports and `flow:digest-also` files: a change in either changes the digest', async () => {
  const { computeCodeDigest } = await import('../../engine/registry.js');
  const root = makeTempDir();
  fs.mkdirSync(path.join(root, 'stages'), { recursive: true });
  fs.mkdirSync(path.join(root, 'native'), { recursive: true });
  fs.writeFileSync(path.join(root, 'stages', 'helper.ts'), '// flow:digest-also native/kernel.cc\nexport const x = 1;\n');
  fs.writeFileSync(path.join(root, 'stages', 'entry.ts'), "import { x } from './helper.js';\nexport default x;\n");
  fs.writeFileSync(path.join(root, 'native', 'kernel.cc'), 'int f() { return 1; }\n');
  const first = await computeCodeDigest(path.join(root, 'stages', 'entry.ts'), root);
  assert.deepEqual(Object.keys(first.codeFiles), ['native/kernel.cc', 'stages/entry.ts', 'stages/helper.ts']);
  fs.writeFileSync(path.join(root, 'native', 'kernel.cc'), 'int f() { return 2; }\n');
  const second = await computeCodeDigest(path.join(root, 'stages', 'entry.ts'), root);
  assert.notEqual(second.codeDigest, first.codeDigest);
  fs.writeFileSync(path.join(root, 'stages', 'helper.ts'), '// flow:digest-also native/missing.cc\nexport const x = 1;\n');
  await assert.rejects(computeCodeDigest(path.join(root, 'stages', 'entry.ts'), root), /flow:digest-also names native\/missing\.cc, which does not exist/);
});

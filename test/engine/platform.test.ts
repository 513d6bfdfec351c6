// Platform facts in the cache key (engine/fingerprint.ts `platform`): a kind's platform probe joins its key, a
// change of platform is a miss explained field by field, and TensorFlow stages predict the backend that will run
// without loading TensorFlow.js and refuse to commit when another one started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeStageModule } from '../../engine/registry.js';
import { makeTempDir, repoRoot } from '../helpers/paths.js';
import { makeProject, runInProcess, stageOutcomes, toyCatalogEntries } from './helpers.js';
import { checkPlatform, tensorflowPlatform } from '../../lib/tf/platform.js';
import type { BackendInfo } from '../../lib/tf/backend.js';

test('a platform probe joins the key: the same params on another backend miss, and the miss names the backend', async () => {
  const dir = makeTempDir('flow-platform-');
  fs.writeFileSync(
    path.join(dir, 'probe.mjs'),
    "export function platformFacts({ params }) { return { backend: process.env.TOY_BACKEND ?? 'wasm', scale: params.factor }; }\n",
  );
  fs.writeFileSync(
    path.join(dir, 'on-backend.mjs'),
    [
      "import fs from 'node:fs';",
      'export default {',
      "  kind: 'toy.on-backend', version: '1', description: 'writes the platform it was keyed for', platform: './probe.mjs',",
      "  inputs: {}, outputs: { out: { description: 'platform.json', type: 'file' } },",
      "  async run(ctx) { fs.writeFileSync(ctx.outs.out, JSON.stringify(ctx.platform)); return { status: 'done' }; },",
      '};',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'schema.json'), JSON.stringify({ type: 'object', additionalProperties: false, properties: { factor: { type: 'number', default: 1 } } }));
  const modulePath = path.join(dir, 'on-backend.mjs');
  const entry = await describeStageModule({ modulePath, sourcePath: modulePath, schemaPath: path.join(dir, 'schema.json'), projectRoot: repoRoot });
  assert.equal(entry.platformModule, path.join(dir, 'probe.mjs'));
  const project = await makeProject([...(await toyCatalogEntries()), entry]);
  const file = project.write('p.yaml', 'name: plat\nstages:\n  fit: { kind: toy.on-backend, params: { factor: 2 } }\n');

  const first = await runInProcess(project, file);
  assert.equal(first.status, 'done', first.output);
  const written = JSON.parse(fs.readFileSync(path.join(first.runDir, 'stages', 'fit', 'out'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(written, { backend: 'wasm', scale: 2 }, 'the stage sees the facts its key holds');
  assert.equal(stageOutcomes(await runInProcess(project, file)).fit, 'cached');

  process.env.TOY_BACKEND = 'webgpu';
  try {
    const other = await runInProcess(project, file);
    assert.equal(stageOutcomes(other).fit, 'ran');
    assert.deepEqual(other.state.stages.fit!.reason, ['platform backend: wasm → webgpu']);
    assert.notEqual(other.state.stages.fit!.key, first.state.stages.fit!.key);
  } finally {
    delete process.env.TOY_BACKEND;
  }
  assert.equal(stageOutcomes(await runInProcess(project, file)).fit, 'cached', 'back on wasm: the first entry is a hit again');
});

test('TensorFlow stages: auto resolves to an installed backend; a forced one is taken as named', () => {
  const auto = tensorflowPlatform('auto');
  assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(auto.backend), auto.backend);
  assert.deepEqual(tensorflowPlatform('cpu'), { backend: 'cpu', nativeConvolutions: false, nativeDirect: false });
  assert.equal(tensorflowPlatform('tensorflow-gpu').backend, 'tensorflow-gpu');
  if (auto.backend !== 'wasm') return;
  // Whether the native kernels run is part of it; FLOW_NATIVE_CONV=0 is read when the addon would load.
  const wasm = tensorflowPlatform('wasm');
  assert.equal(typeof wasm.nativeConvolutions, 'boolean');
  if (!wasm.nativeConvolutions) assert.equal(wasm.nativeDirect, false);
});

test('checkPlatform: a backend other than the key names is refused with what to do', () => {
  const started = (name: BackendInfo['name'], kernels: string): BackendInfo => ({ name, package: 'p', version: '1', threads: 1, reason: 'tfjs-node-gpu unavailable: no CUDA', kernels });
  assert.doesNotThrow(() => checkPlatform({}, started('cpu', "the backend's own")), 'no facts in the key (a stage test): no check');
  assert.doesNotThrow(() => checkPlatform({ backend: 'wasm', nativeConvolutions: true }, started('wasm', 'convolutions native: im2col + OpenBLAS')));
  assert.throws(() => checkPlatform({ backend: 'tensorflow-gpu', nativeConvolutions: false }, started('wasm', 'convolutions on XNNPACK')), /backend tensorflow-gpu was expected but wasm started \(tfjs-node-gpu unavailable: no CUDA\).*--set backend=wasm/);
  assert.throws(() => checkPlatform({ backend: 'wasm', nativeConvolutions: true }, started('wasm', 'convolutions on XNNPACK')), /native convolutions were expected/);
});

// model.build and model.load run as the engine runs them: pretrained loading by name and shape with its
// report, strict mode, bad input (size, truncated weights), and the exported probe check.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import modelBuild, { type ModelBuildParams } from '../../stages/model-build/index.js';
import modelLoad from '../../stages/model-load/index.js';
import { initBackend } from '../../lib/tf/backend.js';
import { buildUNet } from '../../lib/tf/unet.js';
import { getWeightsAsNamed, loadModelFromDir, saveModelToDir } from '../../lib/tf/model-io.js';
import type { LoadReport } from '../../lib/tf/pretrained.js';
import { FLOW_MODEL_JSON, encodeFloat32, runProbe, type FlowModelFile } from '../../lib/contracts/flow-model.js';
import { makeTempDir } from '../helpers/paths.js';
import { stageContext } from '../helpers/stage-context.js';

const base: ModelBuildParams = {
  arch: 'unet2d',
  input_size: [16, 16],
  in_channels: 3,
  classes: 1,
  filters: 4,
  depth: 2,
  batch_norm: true,
  dropout: 0,
  seed: 5,
  freeze_encoder: false,
  strict: false,
  backend: 'wasm',
};

before(async () => {
  await initBackend('wasm');
});

async function build(params: Partial<ModelBuildParams>, inputs: Record<string, string> = {}) {
  const run = stageContext(modelBuild, { ...base, ...params }, inputs);
  const outcome = await modelBuild.run(run.ctx);
  const report = JSON.parse(fs.readFileSync(path.join(run.ctx.outs.report!, 'load-report.json'), 'utf8')) as LoadReport & { frozen: string[] };
  return { ...run, outcome, report, modelDir: run.ctx.outs.model! };
}

async function sameWeights(a: string, b: string, layer: string): Promise<boolean> {
  const [ma, mb] = [await loadModelFromDir(a), await loadModelFromDir(b)];
  const wa = getWeightsAsNamed(ma);
  const wb = getWeightsAsNamed(mb);
  const names = Object.keys(wa).filter((name) => name.startsWith(`${layer}/`));
  assert.ok(names.length > 0);
  for (const name of names) {
    if (JSON.stringify(Array.from(await wa[name]!.data())) !== JSON.stringify(Array.from(await wb[name]!.data()))) return false;
  }
  return true;
}

test('model.build without pretrained writes the model, an empty report and the backend', async () => {
  const { outcome, report, env, modelDir, printed } = await build({});
  assert.equal(outcome.status, 'done');
  assert.ok(fs.existsSync(path.join(modelDir, 'model.json')) && fs.existsSync(path.join(modelDir, 'weights.bin')));
  assert.equal(report.source, null);
  assert.equal(env.backend, 'wasm');
  assert.equal(env.backendThreads, 1);
  assert.ok(printed.some((line) => line.includes('no pretrained weights')));
});

test('pretrained with another class count: all but the head load; the head is reported as a shape mismatch', async () => {
  const source = await build({ seed: 1, classes: 4, in_channels: 3 });
  const target = await build({ seed: 2, classes: 1 }, { pretrained: source.modelDir });
  assert.equal(target.report.skipped.length, 1);
  assert.equal(target.report.skipped[0]!.layer, 'head');
  assert.equal(target.report.skipped[0]!.reason, 'shape mismatch');
  assert.match(target.report.skipped[0]!.detail, /head\/kernel expected \[1,1,4,1\], found \[1,1,4,4\]/);
  assert.ok(target.report.loaded.includes('enc1_conv1') && target.report.loaded.includes('dec1_up'));
  assert.ok(await sameWeights(source.modelDir, target.modelDir, 'enc1_conv1'));
  assert.ok(!(await sameWeights(source.modelDir, target.modelDir, 'head')));
  assert.ok(target.printed.some((line) => line.includes('skipped head: shape mismatch')));

  await assert.rejects(build({ seed: 2, strict: true }, { pretrained: source.modelDir }), (error: Error) => {
    assert.match(error.message, /strict pretrained load .* failed/);
    assert.match(error.message, /skipped head: shape mismatch/);
    return true;
  });
});

test('pretrained from a deeper model: missing and extra layers reported; a .weights.bin beside model.json works', async () => {
  const deeper = await build({ seed: 1, depth: 3, input_size: [16, 16] });
  const target = await build({ seed: 2, freeze_encoder: true }, { pretrained: deeper.modelDir });
  // depth 2 has no enc3_*; the bottleneck and dec2 widths differ; notInModel lists enc3_* and dec3_*.
  assert.ok(target.report.notInModel.includes('enc3_conv1') && target.report.notInModel.includes('dec3_up'));
  assert.ok(target.report.skipped.some((s) => s.layer === 'bottleneck_conv1' && s.reason === 'shape mismatch'));
  assert.ok(target.report.loaded.includes('enc1_conv1'));
  assert.ok(target.report.frozen.includes('enc2_bn2'));

  const dir = makeTempDir();
  const model = buildUNet({ inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 8 });
  await saveModelToDir(model, path.join(dir, 'm'));
  const fromBin = await build({ seed: 2 }, { pretrained: path.join(dir, 'm', 'weights.bin') });
  assert.equal(fromBin.report.counts.loaded, fromBin.report.counts.modelLayersWithWeights);
  assert.equal(fromBin.report.skipped.length, 0);
  // A flow checkpoint folder holding a LayersModel folder one level down.
  const checkpoint = makeTempDir();
  fs.cpSync(path.join(dir, 'm'), path.join(checkpoint, 'step-000010'), { recursive: true });
  const fromCheckpoint = await build({ seed: 2, strict: true }, { pretrained: checkpoint });
  assert.equal(fromCheckpoint.report.skipped.length, 0);
});

test('bad input: truncated pretrained weights name the file; an input size not divisible by 2^depth names input_size', async () => {
  const source = await build({ seed: 1 });
  const broken = path.join(makeTempDir(), 'broken');
  fs.cpSync(source.modelDir, broken, { recursive: true });
  const bin = path.join(broken, 'weights.bin');
  fs.truncateSync(bin, 100);
  await assert.rejects(build({}, { pretrained: broken }), (error: Error) => error.message.includes(bin) && /truncated/.test(error.message));
  await assert.rejects(build({ input_size: [18, 16] }), /model\.build.*input_size \[18, 16\].*divisible by 2\^depth = 4/);
  await assert.rejects(build({}, { pretrained: path.join(broken, 'absent') }), /absent: pretrained weights not found/);
});

async function exportLike(modelDir: string): Promise<string> {
  // The folder export writes: LayersModel + flow-model.json with a probe (export's own helpers).
  const model = await loadModelFromDir(modelDir);
  const shape = [1, 16, 16, 3];
  const output = runProbe(model, 77, shape);
  const flowModel: FlowModelFile = {
    format: 'flow-model/v1',
    inputShape: [16, 16, 3],
    outputShape: [16, 16, 1],
    classes: 1,
    activation: 'sigmoid',
    transform: {},
    probe: {
      seed: 77,
      input: 'lib/rng Rng(seed).normal(), float32, row-major over shape',
      shape,
      outputShape: [1, 16, 16, 1],
      output: encodeFloat32(output),
      outputSum: output.reduce((a, b) => a + b, 0),
      backend: 'wasm',
    },
  };
  const dir = path.join(makeTempDir(), 'exported');
  await saveModelToDir(model, dir, { extraFiles: { [FLOW_MODEL_JSON]: JSON.stringify(flowModel) } });
  return dir;
}

test('model.load reproduces the exported probe exactly and refuses corrupted weights naming the file', async () => {
  const built = await build({});
  const exported = await exportLike(built.modelDir);
  const run = stageContext(modelLoad, { backend: 'wasm' as const }, { model: exported });
  assert.equal((await modelLoad.run(run.ctx)).status, 'done');
  const check = JSON.parse(fs.readFileSync(path.join(run.ctx.outs.check!, 'reload.json'), 'utf8'));
  assert.equal(check.probe.maxAbsDiff, 0);
  assert.equal(check.probe.exact, true);
  assert.equal(check.parameters, buildUNet({ inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 0 }).countParams());
  assert.deepEqual(check.inputShapes, [[null, 16, 16, 3]]);

  // Same size, different bytes: only the probe can tell.
  const bin = path.join(exported, 'weights.bin');
  const bytes = fs.readFileSync(bin);
  for (let i = 0; i < 64; i++) bytes[bytes.length - 1 - i * 4] = (bytes[bytes.length - 1 - i * 4]! + 7) & 0xff;
  fs.writeFileSync(bin, bytes);
  const corrupt = stageContext(modelLoad, { backend: 'wasm' as const }, { model: exported });
  await assert.rejects(modelLoad.run(corrupt.ctx), (error: Error) => error.message.startsWith(bin) && /incomplete or corrupt/.test(error.message));

  fs.truncateSync(bin, bytes.length - 3);
  const truncated = stageContext(modelLoad, { backend: 'wasm' as const }, { model: exported });
  await assert.rejects(modelLoad.run(truncated.ctx), (error: Error) => error.message.includes(bin) && /truncated/.test(error.message));
});

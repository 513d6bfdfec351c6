// U-Net construction (names, seeded weights, input checks) and LayersModel folders on disk (exact round trip,
// multi-shard manifests, truncated and missing shards).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Tensor } from '@tensorflow/tfjs-core';
import { initBackend, getTf } from '../../lib/tf/backend.js';
import { buildUNet, freezeEncoder, getFlowMetadata, validateUNetInput, type UNetOptions } from '../../lib/tf/unet.js';
import { getWeightsAsNamed, loadModelFromDir, saveModelToDir, setWeightsFromNamed } from '../../lib/tf/model-io.js';
import { Rng } from '../../lib/rng.js';
import { makeTempDir } from '../helpers/paths.js';

const small: UNetOptions = { inputShape: [16, 16, 3], classes: 1, filters: 4, depth: 2, batchNorm: true, seed: 3 };

before(async () => {
  await initBackend('wasm');
});

async function weightValues(model: ReturnType<typeof buildUNet>): Promise<Float32Array[]> {
  return Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

function probe(shape: number[], seed: number): Tensor {
  const rng = new Rng(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => rng.next());
  return getTf().tensor(values, shape);
}

test('U-Net layers carry stable names and the head matches the class count', () => {
  const model = buildUNet(small);
  const names = model.layers.map((layer) => layer.name);
  for (const name of ['enc1_conv1', 'enc1_bn1', 'enc2_pool', 'bottleneck_conv1', 'dec2_up', 'dec2_conv1', 'dec1_concat', 'head']) {
    assert.ok(names.includes(name), `missing layer ${name}`);
  }
  assert.deepEqual(model.outputs[0]!.shape, [null, 16, 16, 1]);
  const multi = buildUNet({ ...small, inputShape: [16, 16, 4], classes: 4, batchNorm: false });
  assert.deepEqual(multi.outputs[0]!.shape, [null, 16, 16, 4]);
  assert.ok(!multi.layers.some((layer) => layer.name.includes('_bn')));
  assert.equal(getFlowMetadata(multi)?.options.classes, 4);
  model.dispose();
  multi.dispose();
});

test('the same seed gives identical initial weights, another seed different ones', async () => {
  const a = await weightValues(buildUNet(small));
  const b = await weightValues(buildUNet(small));
  const c = await weightValues(buildUNet({ ...small, seed: 4 }));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // Kernels are really initialised (not all zero) and within the He-uniform limit.
  const enc1 = a[0]!;
  assert.ok(enc1.some((v) => v !== 0));
  assert.ok(enc1.every((v) => Math.abs(v) <= Math.sqrt(6 / (3 * 3 * 3))));
});

test('input sizes not divisible by 2^depth are refused naming the param', () => {
  assert.equal(validateUNetInput([64, 128], 3), null);
  const message = validateUNetInput([100, 128], 3);
  assert.match(message ?? '', /input_size \[100, 128\].*divisible by 2\^depth = 8/);
  assert.match(validateUNetInput([20, 20], 3, 'size') ?? '', /^size /);
  assert.throws(() => buildUNet({ ...small, inputShape: [18, 16, 3] }), /inputShape \[18, 16\]/);
});

test('a 3D U-Net ([D, H, W, C] input) has the same layer names, 3D layers and a seeded, round-tripping save', async () => {
  const tf = getTf();
  const options: UNetOptions = { inputShape: [8, 16, 8, 4], classes: 4, filters: 2, depth: 2, batchNorm: false, seed: 7 };
  const model = buildUNet(options);
  assert.deepEqual(model.outputs[0]!.shape, [null, 8, 16, 8, 4]);
  assert.equal(model.getLayer('enc1_conv1').getClassName(), 'Conv3D');
  assert.equal(model.getLayer('enc2_pool').getClassName(), 'MaxPooling3D');
  assert.equal(model.getLayer('dec1_up').getClassName(), 'Conv3DTranspose');
  assert.equal(getFlowMetadata(model)?.arch, 'unet3d');
  // He-uniform over the 3x3x3 receptive field: fan-in 27 · 4 for the first conv.
  const firstKernel = (await model.getLayer('enc1_conv1').getWeights()[0]!.data()) as Float32Array;
  assert.ok(firstKernel.every((v) => Math.abs(v) <= Math.sqrt(6 / (27 * 4))) && firstKernel.some((v) => Math.abs(v) > Math.sqrt(6 / (27 * 4)) / 2));
  assert.deepEqual(await weightValues(buildUNet(options)), await weightValues(model));
  const dir = path.join(makeTempDir(), 'model3d');
  await saveModelToDir(model, dir);
  const reloaded = await loadModelFromDir(dir);
  const x = probe([1, 8, 16, 8, 4], 5);
  const diff = tf.max(tf.abs(tf.sub(model.predict(x) as Tensor, reloaded.predict(x) as Tensor)));
  assert.equal((await diff.data())[0], 0);
  assert.equal(getFlowMetadata(reloaded)?.arch, 'unet3d');
  assert.throws(() => buildUNet({ ...options, inputShape: [6, 16, 8, 4] }), /inputShape \[6, 16, 8\].*divisible by 2\^depth = 4/);
  model.dispose();
  reloaded.dispose();
});

test('a saved model reloads and predicts exactly the same (max abs diff 0), with flow metadata', async () => {
  const tf = getTf();
  const model = buildUNet({ ...small, dropout: 0.2 });
  freezeEncoder(model);
  const dir = path.join(makeTempDir(), 'model');
  await saveModelToDir(model, dir);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ['model']); // no temp folder left behind
  const reloaded = await loadModelFromDir(dir);
  const x = probe([2, 16, 16, 3], 11);
  const expected = model.predict(x) as Tensor;
  const actual = reloaded.predict(x) as Tensor;
  assert.equal((await tf.max(tf.abs(tf.sub(expected, actual))).data())[0], 0);
  const meta = getFlowMetadata(reloaded);
  assert.ok(meta !== null && meta.frozenLayers.includes('enc1_conv1'));
  assert.equal(reloaded.getLayer('enc1_conv1').trainable, false);
  assert.equal(reloaded.getLayer('dec1_conv1').trainable, true);
  // Saving again over the folder replaces it atomically.
  await saveModelToDir(reloaded, dir);
  assert.ok(fs.existsSync(path.join(dir, 'model.json')));
  tf.dispose([x, expected, actual]);
});

test('a multi-shard model.json (converter layout) loads; a truncated or missing shard is named', async () => {
  const tf = getTf();
  const model = buildUNet(small);
  const dir = path.join(makeTempDir(), 'model');
  await saveModelToDir(model, dir);
  // Re-shard the way TensorFlow's converter does: group1-shard{i}of{n}.bin, split at arbitrary byte offsets.
  const weights = fs.readFileSync(path.join(dir, 'weights.bin'));
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const cut = [0, 1000, 7001, weights.length];
  const paths = [1, 2, 3].map((i) => `group1-shard${i}of3.bin`);
  paths.forEach((name, i) => fs.writeFileSync(path.join(dir, name), weights.subarray(cut[i], cut[i + 1])));
  fs.rmSync(path.join(dir, 'weights.bin'));
  json.weightsManifest[0].paths = paths;
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  const reloaded = await loadModelFromDir(dir);
  const x = probe([1, 16, 16, 3], 12);
  assert.equal((await tf.max(tf.abs(tf.sub(model.predict(x) as Tensor, reloaded.predict(x) as Tensor))).data())[0], 0);

  const last = path.join(dir, paths[2]!);
  fs.truncateSync(last, fs.statSync(last).size - 10);
  await assert.rejects(loadModelFromDir(dir), (error: Error) => {
    assert.ok(error.message.includes(last), error.message);
    assert.match(error.message, /truncated/);
    return true;
  });
  fs.rmSync(path.join(dir, paths[1]!));
  await assert.rejects(loadModelFromDir(dir), new RegExp(`${paths[1]}.*cannot be read.*ENOENT`));
  await assert.rejects(loadModelFromDir(path.join(dir, 'nope')), /nope.*model\.json.*cannot read/);
});

test('named weights round-trip between models; a shape mismatch is refused', async () => {
  const source = buildUNet(small);
  const target = buildUNet({ ...small, seed: 99 });
  setWeightsFromNamed(target, getWeightsAsNamed(source));
  assert.deepEqual(await weightValues(target), await weightValues(source));
  const wider = buildUNet({ ...small, filters: 8 });
  assert.throws(() => setWeightsFromNamed(wider, getWeightsAsNamed(source)), /enc1_conv1\/kernel.*shape \[3, 3, 3, 4\].*expects \[3, 3, 3, 8\]/);
});

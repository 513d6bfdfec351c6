// `flow init` on the shipped samples: Carvana and BraTS get their shipped pipelines with data.root set; every
// generated pipeline validates, takes the shipped param names (--set train.epochs=2), and comments its choices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeIsicSample } from '../../scripts/make-samples/image-pairs.js';
import { planImagePairs, unetActivationBytes } from '../../lib/datasets/init/plan.js';
import { flow, makeFlowHome } from '../e2e/helpers.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';

async function initAndValidate(root: string): Promise<string> {
  const home = makeFlowHome('flow-init-');
  const file = path.join(home.dir, 'plan.yaml');
  const init = await flow(home, ['init', root, '-o', file]);
  assert.equal(init.code, 0, init.stderr);
  const validate = await flow(home, ['validate', file, '--set', 'train.epochs=2', '--set', 'train.input_size=[32,32]', '--set', 'data.root=/elsewhere']);
  assert.equal(validate.code, 0, validate.stdout + validate.stderr);
  return fs.readFileSync(file, 'utf8');
}

test('Carvana and BraTS samples: the layout is recognised and the shipped pipeline written with data.root', async () => {
  for (const name of ['carvana', 'brats']) {
    const root = path.join(samplesDir, name);
    const yaml = await initAndValidate(root);
    assert.match(yaml, new RegExp(`the layout is ${name}`));
    assert.match(yaml, new RegExp(`^\\s+root: ${JSON.stringify(root).replace(/[/\\]/g, '\\$&')}`, 'm'));
    assert.match(yaml, new RegExp(`kind: ${name}\\.ingest`));
  }
});

test('image pairs: every planned choice carries its reason', async () => {
  const root = path.join(makeTempDir(), 'isic');
  await makeIsicSample(root, 6);
  const yaml = await initAndValidate(root);
  for (const reason of [/input_size: \[\d+,\d+\] +# median picture \d+x\d+/, /batch_size: \d+ +# /, /epochs: \d+ +# 6 cases/, /loss: bce_dice +# two label values/, /normalize: dataset +# photographs/, /background: 0/, /split_file: null +# no official test list/]) {
    assert.match(yaml, reason);
  }
  assert.match(yaml, /# Fingerprint: 6 image\/mask pairs, 0 broken, 4 other files skipped|# Fingerprint: 6 image\/mask pairs, 4 other files skipped/);
});

test('the planned input size keeps the U-Net activations within the memory budget', () => {
  const fingerprint = {
    cases: 100, broken: [], skipped: 0, sizes: [{ width: 1918, height: 1280 }], channels: { 3: 100 },
    intensity: { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] }, labelValues: new Map([[0, 900], [255, 100]]),
  };
  const yaml = planImagePairs({ images: 'train/*.jpg', masks: 'train_masks/{stem}_mask.gif', splitFile: null }, fingerprint, { root: '/data', name: 'big', memoryBudget: 2 ** 31 });
  const [, h, w] = /input_size: \[(\d+),(\d+)\]/.exec(yaml)!.map(Number);
  assert.ok(h! % 16 === 0 && w! % 16 === 0 && h! < 1280 && w! < 1918, `${h}x${w}`);
  assert.ok(unetActivationBytes(h! * w!, 8, 16, 3) <= 2 ** 31);
  assert.ok(unetActivationBytes((h! + 16) * (w! + 16), 8, 16, 3) > 2 ** 31 * 0.7, 'not scaled far below the budget');
  assert.match(yaml, /# median picture 1918x1280 scaled down, .*GiB of activations at batch 8 \(budget 2\.00 GiB\)/);
});

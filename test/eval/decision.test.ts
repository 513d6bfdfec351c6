// The decision predict records in pairs.json comes from the adapter, and is the rule its restore applies:
// probabilities on either side of (and at) the recorded threshold land where the rule says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { carvanaAdapter } from '../../lib/datasets/carvana/index.js';
import { bratsAdapter } from '../../lib/datasets/brats/index.js';
import { argmaxClasses } from '../../lib/preprocess/brats.js';
import type { PreparedCase } from '../../lib/datasets/dataset.js';
import type { JsonObject } from '../../engine/stage.js';
import { CARVANA_LABELS } from '../../lib/datasets/carvana/ingest.js';

test('carvana: restore marks car exactly where the probability exceeds the recorded threshold', async () => {
  const decision = carvanaAdapter.decision(1);
  assert.equal(typeof decision.threshold, 'number');
  const t = decision.threshold!;
  assert.match(decision.rule, new RegExp(`> ${t}$`));
  const probabilities = Float32Array.from([t - 0.01, t, Math.fround(t + 1e-6), t + 0.01]);
  const transform: JsonObject = { dataset: 'carvana', labels: structuredClone(CARVANA_LABELS) as unknown as JsonObject, size: [1, 4], channels: 3, resize: { image: 'linear', mask: 'nearest' }, normalize: { mode: 'none', mean: [0, 0, 0], std: [1, 1, 1] } };
  const prepared: PreparedCase = { id: 'c', x: new Float32Array(12), count: 1, itemShape: [1, 4, 3], label: null, context: { height: 1, width: 4 } };
  const map = await carvanaAdapter.restore(probabilities, 1, prepared, transform);
  assert.deepEqual([...map.data], [...probabilities].map((p) => (p > t ? 255 : 0)));
  assert.deepEqual([...map.data], [0, 0, 255, 255]);
});

test('brats: argmax records no threshold; one sigmoid channel records the >= threshold argmaxClasses applies', () => {
  assert.deepEqual(bratsAdapter.decision(4), { rule: 'argmax over the softmax channels', threshold: null });
  const single = bratsAdapter.decision(1);
  const t = single.threshold!;
  assert.match(single.rule, new RegExp(`>= ${t}$`));
  const probabilities = Float32Array.from([t - 0.01, t, t + 0.01]);
  assert.deepEqual([...argmaxClasses(probabilities, 1)], [...probabilities].map((p) => (p >= t ? 1 : 0)));
  assert.deepEqual([...argmaxClasses(probabilities, 1)], [0, 1, 1]);
});

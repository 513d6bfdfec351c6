// Step 11: the model over the chosen records, predictions and labels written in the dataset's own format
// (PNG masks at the original size, .nii.gz label maps with the source geometry), each named after its source
// case, paired in pairs.json for evaluate, and side-by-side panels showing every class.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Tensor } from '@tensorflow/tfjs-core';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import type { DatasetAdapter, LabelMap, PreparedCase } from '../../lib/datasets/dataset.js';
import { getDatasetKind } from '../../lib/datasets/index.js';
import { coloursFor, labelPlane, renderPanel, sliceWithMostForeground, type ClassColour } from '../../lib/plot/index.js';
import { getString } from '../../lib/tfrecord/example.js';
import { readExamples } from '../../lib/tfrecord/spec.js';
import { backendFacts, getTf, initBackend, type BackendPreference } from '../../lib/tf/backend.js';
import { checkPlatform } from '../../lib/tf/platform.js';
import { loadModelFromDir } from '../../lib/tf/model-io.js';
import { concatArrays } from '../../lib/typed-arrays.js';
import { pairsContract, readContract, splitContract, transformHeaderContract, writeContract, type PairsFile } from '../../lib/contracts/index.js';

export interface PredictParams {
  backend: BackendPreference;
  batch_size: number;
  subset: 'val' | 'train' | 'test' | 'all';
  panels: number;
  panel_width: number;
}

/** File-name-safe id (ids come from file stems, but a record could hold anything). */
export function fileStem(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Runs the model over `x` (count items of itemShape) in batches; returns the outputs and channels per pixel. */
function predictItems(model: LayersModel, x: Float32Array, count: number, itemShape: number[], batchSize: number): { output: Float32Array; channels: number } {
  const tf = getTf();
  const itemSize = itemShape.reduce((a, b) => a * b, 1);
  const parts: Float32Array[] = [];
  let channels = 0;
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const values = tf.tidy(() => {
      const batch = tf.tensor(x.subarray(start * itemSize, (start + n) * itemSize), [n, ...itemShape], 'float32');
      const out = model.predict(batch) as Tensor | Tensor[];
      const tensor = Array.isArray(out) ? out[0]! : out;
      channels = tensor.shape[tensor.shape.length - 1]!;
      return tensor.dataSync() as Float32Array;
    });
    parts.push(values);
  }
  return { output: concatArrays(parts, (length) => new Float32Array(length)), channels };
}

function checkInputShape(model: LayersModel, prepared: PreparedCase, modelDir: string): void {
  const declared = model.inputs[0]!.shape.slice(1);
  const mismatch = declared.length !== prepared.itemShape.length ||
    declared.some((d, axis) => d !== null && d !== prepared.itemShape[axis]);
  if (mismatch) {
    throw new Error(
      `case ${prepared.id}: transform.json prepares inputs of shape [${prepared.itemShape.join(', ')}] but the model in ${modelDir} ` +
        `expects [${declared.map((d) => d ?? '?').join(', ')}]; use the transform and model of the same run`,
    );
  }
}

async function drawPanel(adapter: DatasetAdapter, colours: ClassColour[], prepared: PreparedCase, prediction: LabelMap, file: string, width: number): Promise<void> {
  const is3d = prediction.shape.length === 3;
  const slice = is3d ? sliceWithMostForeground(prepared.label && prepared.label.data.some((v) => v !== 0) ? prepared.label : prediction) : null;
  const background = await adapter.background(prepared, slice);
  const predictionPlane = labelPlane(prediction, slice);
  const labelPlaneData = prepared.label ? labelPlane(prepared.label, slice).data : null;
  if (background.width !== predictionPlane.width || background.height !== predictionPlane.height) {
    throw new Error(`case ${prepared.id}: panel background is ${background.width}x${background.height} but the prediction is ${predictionPlane.width}x${predictionPlane.height}`);
  }
  const png = await renderPanel({
    background,
    label: labelPlaneData,
    prediction: predictionPlane.data,
    colours,
    maxTileWidth: width,
    title: slice === null ? prepared.id : `${prepared.id} z=${slice}`,
  });
  await writeFile(file, png);
}

export default defineStage<PredictParams>({
  kind: 'predict',
  version: '1',
  description: "Predict label maps in the dataset's own format, pair them with labels (pairs.json) and draw input | label | prediction panels.",
  inputs: {
    model: { description: 'LayersModel folder (train or export output)' },
    data: { description: "tfrecord.read's data folder" },
    split: { description: "preprocess's split.json: records whose group (car / patient / ...) is in its `val` (or `train`, `test`) list are predicted" },
    transform: { description: "preprocess's transform.json (replayed to feed the model as in training)" },
  },
  outputs: {
    predictions: { description: 'pairs.json, pred/ (predictions) and label/ (ground truth), in the dataset format', type: 'dir' },
    panels: { description: 'input | label | prediction PNG panels with colour-coded overlays', type: 'dir' },
  },
  platform: '../../lib/tf/platform.js',
  async run(ctx) {
    const { batch_size: batchSize, subset } = ctx.params;
    const header = await readContract(transformHeaderContract, ctx.inputs.transform!);
    // The adapter validates the rest of the transform against its preprocess's contract.
    const transform = header as unknown as JsonObject;
    const split = await readContract(splitContract, ctx.inputs.split!);
    const groups = subset === 'all' ? null : split[subset];
    if (subset !== 'all' && !Array.isArray(groups)) {
      throw new Error(`${ctx.inputs.split}: has no "${subset}" group list (the layout has no official test list?); predict subset val, train or all`);
    }
    const wanted = groups === null || groups === undefined ? null : new Set(groups);
    const kind = getDatasetKind(header.dataset, ctx.inputs.transform!);
    const adapter = kind.adapter;
    const labels = adapter.labels(transform);
    const colours = coloursFor(labels, kind.colours);
    const backend = await initBackend(ctx.params.backend);
    checkPlatform(ctx.platform, backend);
    ctx.recordEnv(backendFacts(backend));
    const model = await loadModelFromDir(ctx.inputs.model!);

    const outDir = ctx.outs.predictions!;
    const panelsDir = ctx.outs.panels!;
    await mkdir(path.join(outDir, 'pred'), { recursive: true });
    await mkdir(path.join(outDir, 'label'), { recursive: true });
    await mkdir(panelsDir, { recursive: true });
    const cases: PairsFile['cases'] = [];
    const seen = new Set<string>();
    const seenGroups = new Set<string>();
    let channels = 0;
    let panelsDrawn = 0;
    const started = Date.now();
    // Cases wait here until they fill a batch: Carvana gives one image per case, and one model.predict per
    // image would leave the backend mostly idle.
    let pending: PreparedCase[] = [];
    let pendingItems = 0;
    const finishCase = async (prepared: PreparedCase, output: Float32Array): Promise<void> => {
      const prediction = await adapter.restore(output, channels, prepared, transform);
      const stem = fileStem(prepared.id);
      const predictionRel = `pred/${stem}${adapter.extension}`;
      await adapter.write(prediction, prepared, path.join(outDir, predictionRel));
      let labelRel: string | null = null;
      if (prepared.label !== null) {
        labelRel = `label/${stem}${adapter.extension}`;
        await adapter.write(prepared.label, prepared, path.join(outDir, labelRel));
      }
      cases.push({ id: prepared.id, prediction: predictionRel, label: labelRel, spacing: (prepared.label ?? prediction).spacing });
      if (panelsDrawn < ctx.params.panels) {
        await drawPanel(adapter, colours, prepared, prediction, path.join(panelsDir, `${String(panelsDrawn).padStart(3, '0')}_${stem}.png`), ctx.params.panel_width);
        panelsDrawn++;
      }
      if (cases.length % 10 === 0) ctx.print(`${cases.length} cases predicted`);
    };
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const itemShape = pending[0]!.itemShape;
      const x = pending.length === 1 ? pending[0]!.x : concatArrays(pending.map((p) => p.x), (length) => new Float32Array(length));
      const result = predictItems(model, x, pendingItems, itemShape, batchSize);
      channels = result.channels;
      const outputPerItem = result.output.length / pendingItems;
      let item = 0;
      const batch = pending;
      pending = [];
      pendingItems = 0;
      for (const p of batch) {
        await finishCase(p, result.output.subarray(item * outputPerItem, (item + p.count) * outputPerItem));
        item += p.count;
      }
    };
    try {
      for await (const view of readExamples(ctx.inputs.data!)) {
        if (ctx.signal.aborted) return { status: 'interrupted' };
        const id = getString(view.features, 'id');
        const group = getString(view.features, 'group');
        if (wanted !== null && !wanted.has(group)) continue;
        seenGroups.add(group);
        if (seen.has(id)) throw new Error(`${path.join(ctx.inputs.data!, view.file)} record ${view.index}: id "${id}" appears twice in the data`);
        seen.add(id);
        const prepared = await adapter.prepare(view.features, transform);
        checkInputShape(model, prepared, ctx.inputs.model!);
        if (pending.length > 0 && pending[0]!.itemShape.join('x') !== prepared.itemShape.join('x')) await flush();
        pending.push(prepared);
        pendingItems += prepared.count;
        if (pendingItems >= batchSize) await flush();
      }
      await flush();
    } finally {
      model.dispose();
    }
    if (wanted !== null) {
      const missing = [...wanted].filter((group) => !seenGroups.has(group));
      if (missing.length > 0) {
        throw new Error(
          `${ctx.inputs.split}: ${missing.length} ${subset} group(s) are not in ${ctx.inputs.data} (e.g. ${missing.slice(0, 3).join(', ')}); ` +
            'split.json and the data must come from the same preprocess run',
        );
      }
    }
    const pairs: PairsFile = {
      dataset: kind.name,
      labelValues: labels.classes.map((c) => c.value),
      labels,
      format: adapter.format,
      decision: adapter.decision(channels),
      cases,
    };
    await writeContract(pairsContract, path.join(outDir, 'pairs.json'), pairs);
    const seconds = (Date.now() - started) / 1000;
    const labelled = cases.filter((c) => c.label !== null).length;
    ctx.print(`${cases.length} cases (${labelled} with label) in ${seconds.toFixed(1)} s on ${backend.name}; ${panelsDrawn} panels`);
    return { status: 'done', summary: { cases: cases.length, labelled, panels: panelsDrawn } };
  },
});

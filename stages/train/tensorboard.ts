// The train stage's TensorBoard event file (its `events` output, so `tensorboard --logdir runs/` finds every
// run through its stages/train link): the step and epoch curves of metrics.jsonl on the global step axis, the
// HParams plugin's data (this training's hyper-parameters, and `final/...` scalars for its dashboard), and
// input | label | prediction panels of the first validation items with the published weights.
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Tensor } from '@tensorflow/tfjs-core';
import { getTf } from '../../lib/tf/backend.js';
import { SummaryWriter, type HParamValue } from '../../lib/tensorboard/index.js';
import { LEGEND_HEIGHT, PANEL_GAP, panelTileSize, renderPanel, sliceWithMostForeground, type ClassColour } from '../../lib/plot/index.js';
import type { Hparams } from '../../lib/train/hparams.js';
import type { MetricsLine, TrainSummary } from '../../lib/train/loop.js';
import type { ValidationSource } from '../../lib/train/validation.js';

/** Overlay colours by class index (1.. ; 0 is background), Okabe-Ito. */
const CLASS_RGB: [number, number, number][] = [[0, 158, 115], [213, 94, 0], [240, 228, 66], [0, 114, 178], [204, 121, 167], [86, 180, 233]];

/** Hyper-parameters as HParams values: nested ones flattened to `a.b`, lists and nulls as their JSON. */
export function hparamValues(hparams: Hparams): Record<string, HParamValue> {
  const out: Record<string, HParamValue> = {};
  const walk = (prefix: string, value: unknown): void => {
    if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') out[prefix] = value;
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    else if (value !== undefined) out[prefix] = JSON.stringify(value);
  };
  walk('', hparams);
  return out;
}

export interface PanelImage {
  png: Buffer;
  width: number;
  height: number;
}

/** One RGB background from an item's channels: the first three (or the first, as grey), each min-max scaled. */
function background(x: Float32Array, pixels: number, channels: number, offset: number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3);
  const used = channels >= 3 ? [0, 1, 2] : [0, 0, 0];
  for (let k = 0; k < 3; k++) {
    const c = used[k]!;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < pixels; i++) {
      const v = x[offset + i * channels + c]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < pixels; i++) rgb[i * 3 + k] = Math.round((x[offset + i * channels + c]! - lo) * scale);
  }
  return rgb;
}

/**
 * Panels of the first `count` validation items with the model as it is now: 2D items whole, 3D patches at the
 * axial slice with the most labelled voxels.
 */
export async function validationPanels(model: LayersModel, val: ValidationSource, shape: readonly number[], classes: number, count: number): Promise<PanelImage[]> {
  if (count <= 0 || val.count === 0) return [];
  const tf = getTf();
  let first: { x: Float32Array; y: Uint8Array; count: number } | undefined;
  for await (const batch of val.batches(Math.min(count, val.count))) {
    first = batch;
    break;
  }
  if (!first) return [];
  const n = first.count;
  const probabilities = tf.tidy(() => {
    const out = model.predict(tf.tensor(first.x, [n, ...shape], 'float32')) as Tensor | Tensor[];
    return (Array.isArray(out) ? out[0]! : out).dataSync() as Float32Array;
  });
  const channels = shape[shape.length - 1]!;
  const spatial = shape.slice(0, -1);
  const [depth, height, width] = spatial.length === 3 ? (spatial as [number, number, number]) : [1, spatial[0]!, spatial[1]!];
  const plane = height * width;
  const voxels = depth * plane;
  const outChannels = classes === 1 ? 1 : classes;
  const colours: ClassColour[] = Array.from({ length: Math.max(1, classes - 1) }, (_, i) => ({ value: i + 1, name: classes === 1 ? 'foreground' : `class ${i + 1}`, rgb: CLASS_RGB[i % CLASS_RGB.length]! }));
  const panels: PanelImage[] = [];
  for (let item = 0; item < n; item++) {
    const label = first.y.subarray(item * voxels, (item + 1) * voxels);
    const z = depth > 1 ? sliceWithMostForeground({ data: label, shape: [depth, height, width], spacing: [1, 1, 1] }) : 0;
    const prediction = new Uint8Array(plane);
    for (let i = 0; i < plane; i++) {
      const at = (item * voxels + z * plane + i) * outChannels;
      if (outChannels === 1) prediction[i] = probabilities[at]! > 0.5 ? 1 : 0;
      else {
        let best = 0;
        for (let c = 1; c < outChannels; c++) if (probabilities[at + c]! > probabilities[at + best]!) best = c;
        prediction[i] = best;
      }
    }
    const rgb = background(first.x, plane, channels, (item * voxels + z * plane) * channels);
    const png = await renderPanel({ background: { data: rgb, width, height }, label: Uint8Array.from(label.subarray(z * plane, (z + 1) * plane)), prediction, colours, title: `validation item ${item}${depth > 1 ? `, slice ${z}` : ''}` });
    const tile = panelTileSize(width, height);
    panels.push({ png, width: tile.width * 3 + PANEL_GAP * 2, height: tile.height + LEGEND_HEIGHT });
  }
  return panels;
}

export interface TrainEvents {
  metrics: readonly MetricsLine[];
  summary: TrainSummary;
  hparams: Hparams;
  panels: readonly PanelImage[];
  /** When training ended (seconds since the epoch); the curves' wall times count back from it. */
  endSecs: number;
}

/**
 * Writes the event file into `dir`. metrics.jsonl has no clock, so wall times are reconstructed from each
 * epoch's seconds (steps spread evenly within their epoch), ending at `endSecs`: TensorBoard's relative-time
 * axis then shows training time, not the moment the file was written.
 */
export async function writeTrainEvents(dir: string, events: TrainEvents): Promise<string> {
  const epochs = events.metrics.filter((m): m is Extract<MetricsLine, { type: 'epoch' }> => m.type === 'epoch');
  const total = epochs.reduce((s, e) => s + (Number.isFinite(e.seconds) ? e.seconds : 0), 0);
  const start = events.endSecs - total;
  const epochEnd = new Map<number, number>();
  const epochStart = new Map<number, number>();
  let clock = start;
  for (const e of epochs) {
    epochStart.set(e.epoch, clock);
    clock += Number.isFinite(e.seconds) ? e.seconds : 0;
    epochEnd.set(e.epoch, clock);
  }
  const stepsOf = new Map<number, number>();
  for (const m of events.metrics) if (m.type === 'step') stepsOf.set(m.epoch, (stepsOf.get(m.epoch) ?? 0) + 1);
  const writer = await SummaryWriter.open(dir, { wallTimeSecs: start });
  try {
    await writer.hparams(hparamValues(events.hparams), start, events.endSecs);
    let lastStep = 0;
    const seenInEpoch = new Map<number, number>();
    for (const m of events.metrics) {
      if (m.type === 'step') {
        const k = (seenInEpoch.get(m.epoch) ?? 0) + 1;
        seenInEpoch.set(m.epoch, k);
        const from = epochStart.get(m.epoch) ?? start;
        const to = epochEnd.get(m.epoch) ?? events.endSecs;
        lastStep = m.step;
        await writer.scalars(m.step, from + ((to - from) * k) / (stepsOf.get(m.epoch) ?? k), { 'step/loss': m.loss, 'step/lr': m.lr, 'step/images_per_s': m.images_per_s });
      } else {
        const numeric: Record<string, number> = {};
        for (const [key, value] of Object.entries(m)) if (key !== 'type' && key !== 'epoch' && typeof value === 'number') numeric[`epoch/${key}`] = value;
        await writer.scalars(lastStep, epochEnd.get(m.epoch) ?? events.endSecs, numeric);
      }
    }
    // The HParams dashboard's metric columns: the run's final numbers.
    const s = events.summary;
    const last = epochs.at(-1);
    const final: Record<string, number> = { 'final/epochs_run': s.epochs_run };
    if (s.best_value !== null) final[`final/best_${s.best_metric}`] = s.best_value;
    if (s.final_loss !== null) final['final/loss'] = s.final_loss;
    for (const [key, value] of Object.entries(last ?? {})) if (key.startsWith('val_') && typeof value === 'number') final[`final/${key}`] = value;
    await writer.scalars(lastStep, events.endSecs, final);
    for (const [i, panel] of events.panels.entries()) await writer.image(`panels/validation_${i}`, lastStep, events.endSecs, panel.png, panel.width, panel.height);
    return await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

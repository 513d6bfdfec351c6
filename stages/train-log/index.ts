// Step 8: train's metrics.jsonl → per-epoch curves for plots (export renders them) and a CSV table.
//
// curves.json format (the contract with export):
//   {
//     "epochs": number[],                       // 1-based epoch numbers, one per epoch line of metrics.jsonl
//     "series": {
//       "<name>": { "split": "train" | "val", "values": (number | null)[] }   // values[i] belongs to epochs[i]
//     },
//     "steps": { "step": number[], "loss": number[], "lr": number[] }         // per-step training loss and lr
//   }
// Series names are the epoch metric names of metrics.jsonl: `loss`, `dice`, `lr` (split train) and
// `val_loss`, `val_dice`, for multi-class also `dice_<k>` / `val_dice_<k>` per foreground class (split val for
// `val_*`). A value is null in an epoch that was not validated (val_every > 1). `seconds` is left out.
// history.csv: one row per epoch, columns `epoch` then the series names in the order above; empty cell = null.
import fs from 'node:fs';
import path from 'node:path';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import { readMetricsJsonl } from '../../lib/train/metrics-file.js';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import type { MetricsLine } from '../../lib/train/loop.js';

export interface CurveSeries {
  split: 'train' | 'val';
  values: (number | null)[];
}

export interface Curves {
  epochs: number[];
  series: Record<string, CurveSeries>;
  steps: { step: number[]; loss: number[]; lr: number[] };
}

const LEFT_OUT = new Set(['type', 'epoch', 'seconds']);

/** Builds curves from metrics lines (an epoch repeated after a resume keeps its last line). */
export function buildCurves(lines: readonly MetricsLine[]): Curves {
  const byEpoch = new Map<number, Record<string, unknown>>();
  const steps: Curves['steps'] = { step: [], loss: [], lr: [] };
  for (const line of lines) {
    if (line.type === 'epoch') byEpoch.set(line.epoch, line);
    else {
      steps.step.push(line.step);
      steps.loss.push(line.loss);
      steps.lr.push(line.lr);
    }
  }
  const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
  const names: string[] = [];
  for (const epoch of epochs) {
    for (const [key, value] of Object.entries(byEpoch.get(epoch)!)) {
      if (!LEFT_OUT.has(key) && typeof value === 'number' && !names.includes(key)) names.push(key);
    }
  }
  // Train series first, then validation, each in first-seen order.
  names.sort((a, b) => Number(a.startsWith('val_')) - Number(b.startsWith('val_')));
  const series: Record<string, CurveSeries> = {};
  for (const name of names) {
    series[name] = {
      split: name.startsWith('val_') ? 'val' : 'train',
      values: epochs.map((epoch) => {
        const value = byEpoch.get(epoch)![name];
        return typeof value === 'number' && Number.isFinite(value) ? value : null;
      }),
    };
  }
  return { epochs, series, steps };
}

export function curvesToCsv(curves: Curves): string {
  const names = Object.keys(curves.series);
  const rows = [['epoch', ...names].join(',')];
  curves.epochs.forEach((epoch, i) => {
    rows.push([String(epoch), ...names.map((name) => String(curves.series[name]!.values[i] ?? ''))].join(','));
  });
  return rows.join('\n') + '\n';
}

export default defineStage<JsonObject>({
  kind: 'train.log',
  version: '1',
  description: "Turn train's metrics.jsonl into per-epoch curves (curves.json) and history.csv.",
  inputs: {
    metrics: { description: "metrics.jsonl from the train stage" },
  },
  outputs: {
    curves: { description: 'folder: curves.json (per-epoch train/val series) and history.csv', type: 'dir' },
  },
  async run(ctx) {
    const file = ctx.inputs.metrics!;
    const lines = readMetricsJsonl(file);
    const curves = buildCurves(lines);
    if (curves.epochs.length === 0) {
      throw new Error(`${file}: no epoch lines: training did not finish an epoch; re-run the train stage`);
    }
    const dir = ctx.outs.curves!;
    await fs.promises.mkdir(dir, { recursive: true });
    await writeJsonAtomic(path.join(dir, 'curves.json'), curves);
    await writeFileAtomic(path.join(dir, 'history.csv'), curvesToCsv(curves));
    ctx.print(`${curves.epochs.length} epochs, series: ${Object.keys(curves.series).join(', ')}`);
    return { status: 'done', summary: { epochs: curves.epochs.length } };
  },
});

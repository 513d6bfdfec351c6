// Training curves (train.log's curves.json) → one chart per quantity: train and val series of the same base
// name share a chart (loss, dice, ...), the learning rate gets its own (log scale when it spans decades).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeLineChart, type ChartSeries } from '../../lib/plot/index.js';

/** train.log's curves.json. */
export interface CurvesFile {
  epochs: number[];
  series: Record<string, { split: 'train' | 'val' | string; values: Array<number | null> }>;
}

export async function readCurves(dir: string): Promise<CurvesFile> {
  const file = dir.endsWith('.json') ? dir : path.join(dir, 'curves.json');
  let parsed: Partial<CurvesFile>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<CurvesFile>;
  } catch (error) {
    throw new Error(`${file}: cannot read train.log's curves.json (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed.epochs) || typeof parsed.series !== 'object' || parsed.series === null) {
    throw new Error(`${file}: expected { epochs: number[], series: { <name>: { split, values } } }`);
  }
  for (const [name, s] of Object.entries(parsed.series)) {
    if (!Array.isArray(s?.values) || s.values.length !== parsed.epochs.length) {
      throw new Error(`${file}: series "${name}" must have one value per epoch (${parsed.epochs.length}), got ${s?.values?.length ?? 'none'}`);
    }
  }
  return parsed as CurvesFile;
}

/** `val_loss`, `loss/val`, `train_dice` → `loss`, `loss`, `dice`. */
export function baseName(name: string): string {
  return name.replace(/^(train|val|validation)[_/.-]/, '').replace(/[_/.-](train|val|validation)$/, '');
}

const TITLES: Record<string, string> = { loss: 'Loss per epoch', dice: 'Dice per epoch', lr: 'Learning rate per epoch' };

/** Writes `<quantity>.png` and `<quantity>.svg` into `outDir`; returns the quantities plotted. */
export async function writeCurvePlots(curves: CurvesFile, outDir: string): Promise<string[]> {
  const groups = new Map<string, ChartSeries[]>();
  const epochs = curves.epochs;
  for (const [name, s] of Object.entries(curves.series)) {
    const quantity = baseName(name);
    const series: ChartSeries = {
      name: s.split === 'train' || s.split === 'val' ? s.split : name,
      x: epochs,
      y: s.values.map((v) => (v === null ? NaN : v)),
      dashed: s.split === 'val',
      colour: s.split === 'val' ? '#D55E00' : s.split === 'train' ? '#0072B2' : undefined,
    };
    const group = groups.get(quantity) ?? [];
    group.push(series);
    groups.set(quantity, group);
  }
  const written: string[] = [];
  for (const [quantity, series] of groups) {
    // A lone series (the learning rate) is named after its quantity rather than "train".
    if (series.length === 1) series[0] = { ...series[0]!, name: quantity };
    const positive = series.flatMap((s) => s.y.filter((v) => Number.isFinite(v) && v > 0));
    const spansDecades = positive.length > 0 && Math.max(...positive) / Math.min(...positive) > 20;
    const safeName = quantity.replace(/[^A-Za-z0-9_.-]/g, '_');
    await writeLineChart(
      {
        title: TITLES[quantity] ?? `${quantity} per epoch`,
        xLabel: 'epoch',
        yLabel: quantity,
        series,
        logY: quantity === 'lr' && spansDecades,
      },
      path.join(outDir, safeName),
    );
    written.push(safeName);
  }
  return written;
}

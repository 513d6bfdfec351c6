// Step 12: metrics of predict's label maps against the ground truth, per region (BraTS WT/TC/ET, Carvana
// car), per case and averaged, with the definition of every number written beside it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import {
  binaryMetrics, defaultRegions, METRIC_DEFINITIONS, regionMask, summarizeRegion, type BinaryMetrics, type Regions,
} from '../../lib/metrics/index.js';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { readLabelFile, type LabelFormat } from './label-files.js';

export interface EvaluateParams {
  regions: Regions | null;
  threshold: number | null;
  spacing_2d: [number, number];
}

/** predictions/pairs.json as docs/contracts.md defines it (plus predict's optional `decision`). */
export interface PairsFile {
  dataset: string;
  labelValues: number[];
  format: LabelFormat;
  cases: Array<{ id: string; prediction: string; label: string | null; spacing?: number[] }>;
  /** How predict turned model outputs into labels, e.g. { rule: 'sigmoid > threshold', threshold: 0.5 }. */
  decision?: { rule: string; threshold: number | null };
}

export async function readPairs(dir: string): Promise<PairsFile> {
  const file = path.join(dir, 'pairs.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: cannot read predict's pairs.json (${(error as Error).message}); the predictions input must be predict's "predictions" folder`);
  }
  const pairs = parsed as Partial<PairsFile>;
  if (typeof pairs.dataset !== 'string' || (pairs.format !== 'png' && pairs.format !== 'nifti') || !Array.isArray(pairs.cases)) {
    throw new Error(`${file}: expected { dataset, format: "png"|"nifti", labelValues, cases: [...] } (docs/contracts.md)`);
  }
  pairs.cases.forEach((c, index) => {
    if (typeof c?.id !== 'string' || typeof c.prediction !== 'string' || (c.label !== null && typeof c.label !== 'string')) {
      throw new Error(`${file}: cases[${index}] needs string "id" and "prediction" and a string or null "label"`);
    }
  });
  return pairs as PairsFile;
}

const CSV_COLUMNS = ['id', 'region', 'dice', 'iou', 'sensitivity', 'specificity', 'hd95', 'tp', 'fp', 'fn', 'tn'] as const;

function csvCell(value: string | number | null): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export default defineStage<EvaluateParams>({
  kind: 'evaluate',
  version: '1',
  description: 'Dice, IoU, sensitivity, specificity and HD95 per region, per case and averaged (metrics.json, per-sample.csv).',
  inputs: {
    predictions: { description: "predict's predictions folder: pairs.json, pred/, label/" },
  },
  outputs: {
    metrics: { description: 'metrics.json: per-region means, per-case values and the definition of every number', type: 'file' },
    table: { description: 'per-sample.csv: one row per case and region', type: 'file' },
  },
  async run(ctx) {
    const dir = ctx.inputs.predictions!;
    const pairs = await readPairs(dir);
    const regions = ctx.params.regions ?? defaultRegions(pairs.dataset);
    const regionNames = Object.keys(regions);
    if (regionNames.length === 0) throw new Error(`stage ${ctx.stageName}: params.regions is empty; name at least one region`);
    const perRegion = new Map<string, Array<BinaryMetrics & { id: string }>>(regionNames.map((name) => [name, []]));
    const withoutLabel: string[] = [];
    const units = pairs.format === 'nifti' ? 'mm (voxel spacing from the NIfTI header)' : 'mm (pixel spacing from pairs.json, else params.spacing_2d)';
    for (const [index, c] of pairs.cases.entries()) {
      if (ctx.signal.aborted) return { status: 'interrupted' };
      if (c.label === null) {
        withoutLabel.push(c.id);
        continue;
      }
      const spacing2d = c.spacing && c.spacing.length === 2 ? c.spacing : ctx.params.spacing_2d;
      const predictionFile = path.join(dir, c.prediction);
      const labelFile = path.join(dir, c.label);
      const [prediction, truth] = await Promise.all([
        readLabelFile(predictionFile, pairs.format, spacing2d),
        readLabelFile(labelFile, pairs.format, spacing2d),
      ]);
      if (prediction.shape.join('x') !== truth.shape.join('x')) {
        throw new Error(`case ${c.id}: prediction ${predictionFile} has shape ${prediction.shape.join('x')} but label ${labelFile} has ${truth.shape.join('x')}; predict must restore predictions to the label's size`);
      }
      for (const name of regionNames) {
        const values = regions[name]!;
        const m = binaryMetrics(regionMask(prediction.data, values), regionMask(truth.data, values), truth.shape, truth.spacing);
        perRegion.get(name)!.push({ id: c.id, ...m });
      }
      if ((index + 1) % 10 === 0) ctx.print(`${index + 1}/${pairs.cases.length} cases`);
    }

    const threshold = ctx.params.threshold ?? pairs.decision?.threshold ?? null;
    const regionReports: JsonObject = {};
    const convenient: JsonObject = {};
    const rows: string[] = [CSV_COLUMNS.join(',')];
    for (const name of regionNames) {
      const cases = perRegion.get(name)!;
      const summary = summarizeRegion(cases);
      regionReports[name] = {
        labels: regions[name]!,
        mean: {
          dice: summary.dice, global_dice: summary.globalDice, iou: summary.iou, sensitivity: summary.sensitivity,
          specificity: summary.specificity, hd95: summary.hd95,
        },
        cases: summary.cases,
        sensitivity_cases: summary.sensitivityCases,
        specificity_cases: summary.specificityCases,
        per_case: cases.map((m) => ({
          id: m.id, dice: m.dice, iou: m.iou, sensitivity: m.sensitivity, specificity: m.specificity, hd95: m.hd95,
          tp: m.tp, fp: m.fp, fn: m.fn, tn: m.tn,
        })),
      };
      // One region (Carvana): plain `dice`, `hd95`...; several (BraTS): `WT_dice`, `ET_hd95`...
      const prefix = regionNames.length === 1 ? '' : `${name}_`;
      convenient[`${prefix}dice`] = summary.dice;
      convenient[`${prefix}global_dice`] = summary.globalDice;
      convenient[`${prefix}iou`] = summary.iou;
      convenient[`${prefix}sensitivity`] = summary.sensitivity;
      convenient[`${prefix}specificity`] = summary.specificity;
      convenient[`${prefix}hd95`] = summary.hd95;
      for (const m of cases) {
        rows.push([m.id, name, m.dice, m.iou, m.sensitivity, m.specificity, m.hd95, m.tp, m.fp, m.fn, m.tn].map(csvCell).join(','));
      }
    }
    const evaluated = pairs.cases.length - withoutLabel.length;
    const metrics: JsonObject = {
      dataset: pairs.dataset,
      ...convenient,
      cases: { total: pairs.cases.length, evaluated, without_label: withoutLabel.length, without_label_ids: withoutLabel },
      regions: regionReports,
      definitions: {
        dice: `mean over cases of per-case Dice (as Kaggle's Carvana score); ${METRIC_DEFINITIONS.dice}`,
        global_dice: 'Dice of all cases pooled: 2*sum(TP) / (2*sum(TP) + sum(FP) + sum(FN)) over every pixel/voxel of every case',
        iou: `mean over cases; ${METRIC_DEFINITIONS.iou}`,
        sensitivity: `mean over cases with a defined value; ${METRIC_DEFINITIONS.sensitivity}`,
        specificity: `mean over cases with a defined value; ${METRIC_DEFINITIONS.specificity}`,
        hd95: `mean over cases; ${METRIC_DEFINITIONS.hd95}`,
        hd95_units: units,
        empty_masks: METRIC_DEFINITIONS.emptyMasks,
        regions: Object.fromEntries(regionNames.map((name) => [name, regions[name]!])),
        label_values: pairs.labelValues,
        decision: pairs.decision?.rule ?? (threshold === null ? 'not recorded' : 'probability > threshold'),
        threshold,
        cases_without_label: 'skipped (counted in cases.without_label)',
      },
    };
    await writeJsonAtomic(ctx.outs.metrics!, metrics);
    await writeFileAtomic(ctx.outs.table!, `${rows.join('\n')}\n`);
    const headline = regionNames
      .map((name) => {
        const mean = (regionReports[name] as { mean: { dice: number | null; hd95: number | null } }).mean;
        return `${name} Dice ${mean.dice?.toFixed(4) ?? '-'} HD95 ${mean.hd95?.toFixed(2) ?? '-'}`;
      })
      .join(', ');
    ctx.print(`${evaluated} cases evaluated, ${withoutLabel.length} without label: ${headline}`);
    return { status: 'done', summary: convenient };
  },
});

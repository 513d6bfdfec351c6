// Step 12: metrics of predict's label maps against the ground truth, per region (the regions declared with the
// dataset's label map: BraTS WT/TC/ET, one per class for image pairs, Carvana car), per case and averaged
// over cases and over regions, with the definition of every number written beside it. Ignore values count
// neither as foreground nor as background; a label value outside the map is an error naming the file; a
// region that never occurs in any ground truth is reported as empty, not scored.
import path from 'node:path';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import {
  binaryMetrics, METRIC_DEFINITIONS, regionMask, summarizeRegion, type BinaryMetrics, type Regions,
} from '../../lib/metrics/index.js';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { labelHistogram, outsideMapReason, pairsContract, readContract, valuesOutsideMap, type LabelSpec, type PairsFile } from '../../lib/contracts/index.js';
import { readLabelFile } from './label-files.js';

export type { PairsFile };

export interface EvaluateParams {
  regions: Regions | null;
  threshold: number | null;
  spacing_2d: [number, number];
}

/** predictions/pairs.json, validated. */
export async function readPairs(dir: string): Promise<PairsFile> {
  return readContract(pairsContract, path.join(dir, 'pairs.json'));
}

/** The regions to score: the param (checked against the label map) or the ones declared with the dataset. */
export function regionsFor(param: Regions | null, labels: LabelSpec, paramPath: string): Regions {
  if (param === null) return structuredClone(labels.regions);
  const values = labels.classes.map((c) => c.value);
  for (const [name, members] of Object.entries(param)) {
    const unknown = members.filter((v) => !values.includes(v));
    if (unknown.length > 0) {
      throw new Error(`${paramPath}.regions.${name}: value(s) ${unknown.join(', ')} are not classes of the dataset's label map (${labels.classes.map((c) => `${c.value} ${c.name}`).join(', ')}); fix the region or the ingest stage's label map`);
    }
  }
  return param;
}

/** Zeroes `ignored` pixels in a mask (they then count as true negatives, which the caller takes back out). */
function withoutIgnored(mask: Uint8Array, ignored: Uint8Array | null): Uint8Array {
  if (ignored === null) return mask;
  for (let i = 0; i < mask.length; i++) if (ignored[i]) mask[i] = 0;
  return mask;
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
    const paramPath = `stages.${ctx.stageName}.params`;
    const regions = regionsFor(ctx.params.regions, pairs.labels, paramPath);
    const regionNames = Object.keys(regions);
    const ignoreValues = new Set(pairs.labels.ignore);
    /** Regions with at least one voxel of ground truth in some case. */
    const occurring = new Set<string>();
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
      for (const [file, map] of [[labelFile, truth], [predictionFile, prediction]] as const) {
        const outside = valuesOutsideMap(pairs.labels, labelHistogram(map.data));
        if (outside.length > 0) throw new Error(`${file}: ${outsideMapReason(outside, pairs.labels, "the ingest stage's label map")}`);
      }
      let ignored: Uint8Array | null = null;
      let ignoredCount = 0;
      if (ignoreValues.size > 0) {
        ignored = new Uint8Array(truth.data.length);
        for (let i = 0; i < ignored.length; i++) if (ignoreValues.has(truth.data[i]!)) (ignored[i] = 1), ignoredCount++;
      }
      for (const name of regionNames) {
        const values = regions[name]!;
        const truthMask = withoutIgnored(regionMask(truth.data, values), ignored);
        if (!occurring.has(name) && truthMask.some((v) => v !== 0)) occurring.add(name);
        const m = binaryMetrics(withoutIgnored(regionMask(prediction.data, values), ignored), truthMask, truth.shape, truth.spacing);
        // Ignored pixels are neither background nor foreground: take them back out of the true negatives.
        const tn = m.tn - ignoredCount;
        perRegion.get(name)!.push({ id: c.id, ...m, tn, specificity: tn + m.fp === 0 ? null : tn / (tn + m.fp) });
      }
      if ((index + 1) % 10 === 0) ctx.print(`${index + 1}/${pairs.cases.length} cases`);
    }

    const threshold = ctx.params.threshold ?? pairs.decision?.threshold ?? null;
    const regionReports: JsonObject = {};
    const convenient: JsonObject = {};
    const rows: string[] = [CSV_COLUMNS.join(',')];
    const emptyRegions = regionNames.filter((name) => perRegion.get(name)!.length > 0 && !occurring.has(name));
    for (const name of emptyRegions) {
      const warning = `region ${name} (values ${regions[name]!.join(', ')}) never occurs in the ground truth of any of the ${perRegion.get(name)!.length} evaluated case(s): it is reported as empty, not scored; check the label map and regions`;
      ctx.log.warn({ stage: ctx.stageName, region: name }, warning);
      ctx.print(`warning: ${warning}`);
    }
    const scored: string[] = [];
    for (const name of regionNames) {
      const empty = emptyRegions.includes(name);
      const cases = perRegion.get(name)!;
      const summary = empty ? summarizeRegion([]) : summarizeRegion(cases);
      if (!empty && cases.length > 0) scored.push(name);
      regionReports[name] = {
        labels: regions[name]!,
        empty,
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
    if (regionNames.length > 1) {
      // Mean over the scored (non-empty) regions of each region's mean over cases.
      for (const metric of ['dice', 'iou', 'hd95'] as const) {
        const values = scored.map((name) => (regionReports[name] as { mean: Record<string, number | null> }).mean[metric]).filter((v): v is number => typeof v === 'number');
        convenient[`mean_${metric}`] = values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
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
        ...(regionNames.length > 1 ? { mean_over_regions: 'mean_dice / mean_iou / mean_hd95: the mean over the non-empty regions of each region\'s mean over cases' } : {}),
        empty_regions: emptyRegions,
        empty_region: 'a region whose values occur in no evaluated ground truth: reported with empty: true and null means, left out of mean_*',
        label_values: pairs.labelValues,
        classes: pairs.labels.classes.map((c) => `${c.value}: ${c.name}`),
        ignore: pairs.labels.ignore,
        ignored_pixels: 'label pixels holding an ignore value count in neither TP, FP, FN nor TN of any region',
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

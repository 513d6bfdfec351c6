// Evaluated regions (named sets of label values, declared with the dataset's label map) and the aggregation of per-case metrics into the numbers
// metrics.json reports.
import { diceFromCounts, type BinaryMetrics } from './binary.js';

export type Regions = Record<string, number[]>;

export interface RegionSummary {
  /** Cases that contributed (cases without ground truth are not here). */
  cases: number;
  /** Mean over cases of per-case Dice (Kaggle's Carvana score). */
  dice: number | null;
  /** Dice of all voxels of all cases pooled: 2*ΣTP / (2*ΣTP + ΣFP + ΣFN). */
  globalDice: number | null;
  iou: number | null;
  sensitivity: number | null;
  specificity: number | null;
  hd95: number | null;
  /** How many cases had a defined sensitivity / specificity (the others are null and left out of the mean). */
  sensitivityCases: number;
  specificityCases: number;
}

export function summarizeRegion(perCase: readonly BinaryMetrics[]): RegionSummary {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const m of perCase) {
    tp += m.tp;
    fp += m.fp;
    fn += m.fn;
  }
  const sensitivities = perCase.map((m) => m.sensitivity).filter((v): v is number => v !== null);
  const specificities = perCase.map((m) => m.specificity).filter((v): v is number => v !== null);
  return {
    cases: perCase.length,
    dice: mean(perCase.map((m) => m.dice)),
    globalDice: perCase.length === 0 ? null : diceFromCounts({ tp, fp, fn }),
    iou: mean(perCase.map((m) => m.iou)),
    sensitivity: mean(sensitivities),
    specificity: mean(specificities),
    hd95: mean(perCase.map((m) => m.hd95)),
    sensitivityCases: sensitivities.length,
    specificityCases: specificities.length,
  };
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

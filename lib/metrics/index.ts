// Segmentation metrics: overlap (Dice, IoU, sensitivity, specificity) and HD95 for 2D and 3D masks.
export { squaredDistanceTransform } from './edt.js';
export {
  binaryMetrics, confusion, diceFromCounts, hd95, imageDiagonal, METRIC_DEFINITIONS, percentile, regionMask,
  surfaceDistances, surfaceOf, type BinaryMetrics, type Confusion,
} from './binary.js';
export {
  mean, summarizeRegion, type RegionSummary, type Regions,
} from './regions.js';

// Dataset kinds (one folder each) behind one interface (dataset.ts), found by name in registry.ts.
export { DATASET_NAMES, getAdapter, getDatasetKind } from './registry.js';
export type { DatasetAdapter, DatasetKind, LabelMap, PreparedCase, RecordEncoder, RgbImage } from './dataset.js';

// The dataset adapter for a transform.json's `dataset` field: the one place that maps a dataset name to the
// code that interprets its records and writes its predictions.
import type { DatasetAdapter } from './adapter.js';
import { bratsAdapter } from './brats.js';
import { carvanaAdapter } from './carvana.js';

const ADAPTERS: Record<string, DatasetAdapter> = { carvana: carvanaAdapter, brats: bratsAdapter };

export const DATASET_NAMES = Object.keys(ADAPTERS);

export function getAdapter(name: string): DatasetAdapter {
  const adapter = ADAPTERS[name];
  if (!adapter) throw new Error(`unknown dataset "${name}" in transform.json: expected one of ${DATASET_NAMES.join(', ')}`);
  return adapter;
}

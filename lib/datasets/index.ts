// The dataset adapter for a transform.json's `dataset` field: the one place that maps a dataset name to the
// code that interprets its records and writes its predictions.
import type { DatasetAdapter } from './adapter.js';
import { carvanaAdapter } from './carvana.js';

export const DATASET_NAMES = ['carvana', 'brats'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export async function getAdapter(name: string): Promise<DatasetAdapter> {
  switch (name) {
    case 'carvana':
      return carvanaAdapter;
    case 'brats': {
      // Loaded by name until lib/datasets/brats.ts lands; then this becomes a static import like carvana's.
      const specifier = './brats.js';
      const module = (await import(specifier)) as { default?: DatasetAdapter; bratsAdapter?: DatasetAdapter };
      const adapter = module.bratsAdapter ?? module.default;
      if (!adapter) throw new Error('lib/datasets/brats.ts exports no DatasetAdapter (expected `bratsAdapter` or a default export)');
      return adapter;
    }
    default:
      throw new Error(`unknown dataset "${name}" in transform.json: expected one of ${DATASET_NAMES.join(', ')}`);
  }
}

// The dataset kinds by name: the one place that maps the `dataset` field of index.json, spec.json and
// transform.json to the code that reads that kind's raw layout and records. Adding a kind = adding its
// folder under lib/datasets/ and one line here.
import { bratsKind } from './brats/index.js';
import { carvanaKind } from './carvana/index.js';
import { imagePairsKind } from './image-pairs/index.js';
import { msdKind } from './msd/index.js';
import { caseFoldersKind } from './case-folders/index.js';
import { nnunetKind } from './nnunet/index.js';
import type { DatasetAdapter, DatasetKind } from './dataset.js';

const KINDS: Record<string, DatasetKind> = Object.fromEntries([carvanaKind, bratsKind, imagePairsKind, nnunetKind, msdKind, caseFoldersKind].map((kind) => [kind.name, kind]));

export const DATASET_NAMES = Object.keys(KINDS);

/** The kind called `name`; `where` names the file the name came from. */
export function getDatasetKind(name: string, where = 'the data'): DatasetKind {
  const kind = KINDS[name];
  if (!kind) throw new Error(`${where}: unknown dataset kind "${name}": expected one of ${DATASET_NAMES.join(', ')}`);
  return kind;
}

/** The predict adapter of a transform.json's `dataset`. */
export function getAdapter(name: string): DatasetAdapter {
  return getDatasetKind(name, 'transform.json').adapter;
}

// The per-case-folder NIfTI dataset kind (nifti.ingest with layout: folders; layout.ts): recorded and predicted
// as multi-channel volumes like BraTS, which is one instance of this layout.
import { bratsKind } from '../brats/index.js';
import type { DatasetKind } from '../dataset.js';

export const caseFoldersKind: DatasetKind = { ...bratsKind, name: 'case-folders', colours: {} };

// The nnU-Net v2 dataset kind: cases found by layout.ts, recorded and predicted as multi-channel volumes (the
// volume records and adapter BraTS uses: predictions are <case>.nii.gz label maps in the dataset's values with
// the source geometry, as nnU-Net writes them).
import { bratsKind } from '../brats/index.js';
import type { DatasetKind } from '../dataset.js';

export const nnunetKind: DatasetKind = { ...bratsKind, name: 'nnunet', colours: {} };


// The Medical Segmentation Decathlon dataset kind: cases found by layout.ts (3D images, or 4D with channels
// last, split into channels `file#k`), recorded and predicted as multi-channel volumes like BraTS.
import { bratsKind } from '../brats/index.js';
import type { DatasetKind } from '../dataset.js';

export const msdKind: DatasetKind = { ...bratsKind, name: 'msd', colours: {} };

// Test helper for BraTS: tiny patients written as real .nii.gz files, so the bad-input cases run through the
// same reader as the shipped data.
import fs from 'node:fs';
import path from 'node:path';
import { writeNifti } from '../../lib/nifti/write.js';

export interface TinyPatientOptions {
  dims?: number[];
  /** Per-suffix dims override (to make one modality mismatch). */
  dimsOf?: Record<string, number[]>;
  omit?: string[];
  /** Extra label value painted into a few voxels of the seg. */
  extraLabel?: { value: number; voxels: number };
}

/** Writes <root>/<folder>/<id>_{flair,t1,t1ce,t2[,seg]}.nii.gz: a bright box of "brain" with a labelled blob. */
export async function writeTinyPatient(root: string, subset: 'HGG' | 'LGG' | 'Validation', id: string, options: TinyPatientOptions = {}): Promise<string> {
  const folder = subset === 'Validation' ? path.join(root, 'Validation', id) : path.join(root, 'Training', subset, id);
  fs.mkdirSync(folder, { recursive: true });
  const suffixes = ['flair', 't1', 't1ce', 't2', ...(subset === 'Validation' ? [] : ['seg'])];
  for (const [m, suffix] of suffixes.entries()) {
    if (options.omit?.includes(suffix)) continue;
    const dims = options.dimsOf?.[suffix] ?? options.dims ?? [12, 10, 8];
    const [X, Y, Z] = dims as [number, number, number];
    const data = new Float32Array(X * Y * Z);
    for (let z = 1; z < Z - 1; z++) {
      for (let y = 1; y < Y - 1; y++) {
        for (let x = 2; x < X - 1; x++) {
          const i = x + X * (y + Y * z);
          const inTumour = Math.abs(x - X / 2) < 2 && Math.abs(y - Y / 2) < 2 && Math.abs(z - Z / 2) < 2;
          const core = inTumour && Math.abs(x - X / 2) < 1 && Math.abs(y - Y / 2) < 1;
          if (suffix === 'seg') data[i] = core ? 1 : inTumour ? 2 : 0;
          else data[i] = 100 * (m + 1) + (inTumour ? 300 : 0) + ((x * 7 + y * 3 + z) % 11);
        }
      }
    }
    if (suffix === 'seg' && options.extraLabel) for (let k = 0; k < options.extraLabel.voxels; k++) data[k] = options.extraLabel.value;
    await writeNifti(path.join(folder, `${id}_${suffix}.nii.gz`), {
      dims,
      spacing: [1, 1, 1.5],
      affine: [-1, 0, 0, 5, 0, -1, 0, 4, 0, 0, 1.5, -3, 0, 0, 0, 1],
      datatype: suffix === 'seg' ? 'uint8' : 'int16',
      data,
    });
  }
  return folder;
}

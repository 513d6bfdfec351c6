// Reads the prediction and label files predict wrote (PNG masks or .nii.gz label maps) into LabelMaps with
// the dataset's own label values, shape in memory order and spacing in the same order.
import { readFile } from 'node:fs/promises';
import type { LabelMap } from '../../lib/datasets/dataset.js';
import { decodeGray } from '../../lib/image/index.js';
import { readNifti } from '../../lib/nifti/read.js';

export type LabelFormat = 'png' | 'nifti';

/**
 * PNG: one gray channel, values kept as stored (Carvana 0/255), shape [H, W], spacing `spacing2d` ([row, col] mm).
 * NIfTI: voxel values rounded to integers 0..255, shape [Z, Y, X] (NIfTI stores x fastest), spacing from the header.
 */
export async function readLabelFile(file: string, format: LabelFormat, spacing2d: readonly number[] = [1, 1]): Promise<LabelMap> {
  if (format === 'png') {
    const gray = await decodeGray(await readFile(file), { label: file });
    return { data: gray.data, shape: [gray.height, gray.width], spacing: [...spacing2d] };
  }
  const volume = await readNifti(file);
  const dims = volume.dims.slice(0, 3);
  while (dims.length < 3) dims.push(1);
  const extra = volume.dims.slice(3).reduce((a, b) => a * b, 1);
  if (extra !== 1) throw new Error(`${file}: a label map must be 3D, this volume has dims ${JSON.stringify(volume.dims)}`);
  const data = new Uint8Array(volume.data.length);
  for (let i = 0; i < data.length; i++) {
    const value = Math.round(volume.data[i]!);
    if (value < 0 || value > 255 || Number.isNaN(value)) {
      throw new Error(`${file}: voxel ${i} holds ${volume.data[i]}, not a label value in 0..255`);
    }
    data[i] = value;
  }
  const spacing = [0, 1, 2].map((axis) => volume.spacing[axis] ?? 1);
  return { data, shape: [dims[2]!, dims[1]!, dims[0]!], spacing: [spacing[2]!, spacing[1]!, spacing[0]!] };
}

// Reading one channel of a volume case, shared by the record encoder and the NIfTI layouts' ingest.
import path from 'node:path';
import { readNifti, type NiftiVolume } from '../../nifti/read.js';

export /**
 * One channel of a case: `file` (a 3D volume) or `file#k` (channel k of a 4D volume with channels last, as the
 * Medical Segmentation Decathlon stores multi-modal images); each file is read once per case.
 */
async function channelVolume(root: string, ref: string, read: Map<string, Promise<NiftiVolume>>): Promise<NiftiVolume> {
  const hash = ref.lastIndexOf('#');
  const rel = hash < 0 ? ref : ref.slice(0, hash);
  let pending = read.get(rel);
  if (pending === undefined) read.set(rel, (pending = readNifti(path.resolve(root, rel))));
  const volume = await pending;
  if (hash < 0) return volume;
  const k = Number(ref.slice(hash + 1));
  const [X, Y, Z] = [volume.dims[0]!, volume.dims[1] ?? 1, volume.dims[2] ?? 1];
  const channels = volume.dims[3] ?? 1;
  if (!Number.isInteger(k) || k < 0 || k >= channels) throw new Error(`${volume.file}: has ${channels} channel(s) (dims ${volume.dims.join('x')}), channel ${ref.slice(hash + 1)} was asked for; re-run the ingest stage`);
  const voxels = X * Y * Z;
  return { ...volume, dims: [X, Y, Z], data: volume.data.subarray(k * voxels, (k + 1) * voxels) };
}

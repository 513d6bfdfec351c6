// Generators of small NIfTI datasets in the nnU-Net v2 raw and Medical Segmentation Decathlon layouts, for the
// tests of nifti.ingest and `flow init`, with what real downloads have:
// - nnU-Net v2 (nnU-Net docs, dataset_format.md): dataset.json {channel_names, labels name → value,
//   numTraining, file_ending, plus keys flow does not read}; imagesTr/<case>_0000.nii.gz, _0001 (two
//   channels, e.g. T2 + ADC), labelsTr/<case>.nii.gz, imagesTs/; anisotropic voxels (0.6 x 0.6 x 3.6 mm) and
//   shapes that differ per case, a world origin that is not zero.
// - Decathlon (medicaldecathlon.com): dataset.json {name, modality, labels value → name, numTraining, numTest,
//   training [{image: "./imagesTr/x.nii.gz", label: ...}], test ["./imagesTs/y.nii.gz"]}; 3D images for one
//   modality (Task02_Heart MRI, Task09_Spleen CT in Hounsfield units), 4D with the channels last for several
//   (Task01_BrainTumour); macOS `._<case>`
//   resource forks beside the cases.
// Deterministic (one seeded Rng): a body ellipsoid with an object inside it, a core inside the object.
//   node --import tsx scripts/make-samples/nifti.ts --layout nnunet|msd3d|msd4d --out DIR
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../../lib/rng.js';
import { writeNifti } from '../../lib/nifti/write.js';
import { argValue, isMainModule, writeFileAtomic } from './common.js';

interface Phantom {
  channels: Float32Array[];
  label: Uint8Array;
  dims: [number, number, number];
}

/** `channels` intensity volumes and a label volume: 0 outside the object, 1 in it, `core` in its centre. */
function phantom(rng: Rng, dims: [number, number, number], channels: number, core: number | null): Phantom {
  const [X, Y, Z] = dims;
  const c = [X * (0.4 + 0.2 * rng.next()), Y * (0.4 + 0.2 * rng.next()), Z * (0.4 + 0.2 * rng.next())];
  const r = [X * (0.2 + 0.08 * rng.next()), Y * (0.2 + 0.08 * rng.next()), Math.max(1.5, Z * (0.25 + 0.1 * rng.next()))];
  const label = new Uint8Array(X * Y * Z);
  const volumes = Array.from({ length: channels }, () => new Float32Array(X * Y * Z));
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = (z * Y + y) * X + x;
        const body = Math.hypot((x - X / 2) / (X * 0.46), (y - Y / 2) / (Y * 0.46)) < 1;
        const d = Math.hypot((x - c[0]!) / r[0]!, (y - c[1]!) / r[1]!, (z - c[2]!) / r[2]!);
        label[i] = d < 1 ? (core !== null && d < 0.5 ? core : 1) : 0;
        volumes.forEach((v, k) => {
          const base = body ? 300 + 40 * k : 0;
          v[i] = body ? base + (label[i] ? 250 + 80 * label[i]! - 60 * k : 0) + Math.round((rng.next() - 0.5) * 40) : 0;
        });
      }
    }
  }
  return { channels: volumes, label, dims };
}

/** writeNifti writes beside the target: the folder must exist. */
async function write(file: string, input: Parameters<typeof writeNifti>[1]): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await writeNifti(file, input);
}

function affine(spacing: number[], origin: number[]): number[] {
  return [spacing[0]!, 0, 0, origin[0]!, 0, spacing[1]!, 0, origin[1]!, 0, 0, spacing[2]!, origin[2]!, 0, 0, 0, 1];
}

/** nnU-Net v2: `cases` training cases + 1 test case, two channels, anisotropic spacing, three classes. */
export async function makeNnunetSample(out: string, cases = 6, seed = 42): Promise<void> {
  const rng = new Rng(seed);
  const spacing = [0.6, 0.6, 3.6];
  const names: string[] = [];
  for (let k = 0; k <= cases; k++) {
    const test = k === cases;
    const id = `prostate_${String(k).padStart(2, '0')}`;
    const dims: [number, number, number] = [32 + 4 * (k % 2), 32, 6 + (k % 3)];
    const p = phantom(rng, dims, 2, 2);
    const geometry = { dims, spacing, affine: affine(spacing, [-10.5, 22, -40 + k]) };
    for (const [c, data] of p.channels.entries()) {
      await write(path.join(out, test ? 'imagesTs' : 'imagesTr', `${id}_${String(c).padStart(4, '0')}.nii.gz`), { ...geometry, datatype: 'float32', data });
    }
    if (!test) await write(path.join(out, 'labelsTr', `${id}.nii.gz`), { ...geometry, datatype: 'uint8', data: p.label });
    if (!test) names.push(id);
  }
  writeFileAtomic(path.join(out, 'dataset.json'), `${JSON.stringify({
    channel_names: { 0: 'T2', 1: 'ADC' },
    labels: { background: 0, PZ: 1, TZ: 2 },
    numTraining: names.length,
    file_ending: '.nii.gz',
    overwrite_image_reader_writer: 'SimpleITKIO',
    name: 'Dataset042_Prostate (generated stand-in)',
  }, null, 2)}\n`);
}

/** Decathlon: 3D (one modality, binary) or 4D (four modalities, channels last, four classes). */
export async function makeMsdSample(out: string, options: { fourD: boolean; cases?: number; seed?: number; ct?: boolean }): Promise<void> {
  const rng = new Rng(options.seed ?? 7);
  const cases = options.cases ?? 6;
  const modalities = options.fourD ? ['FLAIR', 'T1w', 't1gd', 'T2w'] : [options.ct ? 'CT' : 'MRI'];
  const prefix = options.fourD ? 'BRATS' : 'la';
  const spacing = options.fourD ? [1, 1, 1] : [1.25, 1.25, 1.37];
  const training: { image: string; label: string }[] = [];
  const test: string[] = [];
  for (let k = 0; k <= cases; k++) {
    const isTest = k === cases;
    const id = `${prefix}_${String(k + 3).padStart(3, '0')}`;
    const dims: [number, number, number] = [28 + 2 * (k % 3), 28, 10 + (k % 2)];
    const p = phantom(rng, dims, modalities.length, options.fourD ? 3 : null);
    // CT (Task09_Spleen): Hounsfield units, air at -1024 outside the body, a few metal-bright voxels.
    if (options.ct) p.channels[0] = p.channels[0]!.map((v, i) => (v === 0 ? -1024 : i % 997 === 0 ? 3000 : v - 300));
    const voxels = dims[0] * dims[1] * dims[2];
    const data = new Float32Array(voxels * modalities.length);
    p.channels.forEach((v, c) => data.set(v, c * voxels));
    const geometry = { spacing, affine: affine(spacing, [0, 0, 0]) };
    const image = `${isTest ? 'imagesTs' : 'imagesTr'}/${id}.nii.gz`;
    await write(path.join(out, image), { ...geometry, dims: options.fourD ? [...dims, modalities.length] : dims, datatype: 'float32', data });
    writeFileAtomic(path.join(out, path.dirname(image), `._${id}.nii.gz`), Buffer.from('Mac OS X        \u0000\u0005\u0016\u0007'));
    if (isTest) {
      test.push(`./${image}`);
      continue;
    }
    const label = `labelsTr/${id}.nii.gz`;
    // Decathlon BrainTumour labels: 1 edema, 2 non-enhancing, 3 enhancing (the core here).
    await write(path.join(out, label), { ...geometry, dims, datatype: 'uint8', data: p.label });
    training.push({ image: `./${image}`, label: `./${label}` });
  }
  writeFileAtomic(path.join(out, 'dataset.json'), `${JSON.stringify({
    name: options.fourD ? 'BRATS' : options.ct ? 'Spleen' : 'LeftAtrium',
    description: 'generated stand-in',
    tensorImageSize: options.fourD ? '4D' : '3D',
    modality: Object.fromEntries(modalities.map((m, i) => [String(i), m])),
    labels: options.fourD ? { 0: 'background', 1: 'edema', 2: 'non-enhancing tumor', 3: 'enhancing tumour' } : { 0: 'background', 1: options.ct ? 'spleen' : 'left atrium' },
    numTraining: training.length,
    numTest: test.length,
    training,
    test,
  }, null, 4)}\n`);
}

if (isMainModule(import.meta.url)) {
  const out = argValue('out');
  const layout = argValue('layout');
  if (out === undefined || !['nnunet', 'msd3d', 'msd4d'].includes(layout ?? '')) {
    process.stderr.write('usage: nifti.ts --layout nnunet|msd3d|msd4d --out DIR\n');
    process.exit(2);
  }
  await (layout === 'nnunet' ? makeNnunetSample(out) : makeMsdSample(out, { fourD: layout === 'msd4d' }));
  process.stdout.write(`wrote a ${layout} sample to ${out}\n`);
}

// Generates the shipped BraTS-like sample: synthetic MRI heads in the BraTS 2019 layout
// (Training/{HGG,LGG}/<p>/<p>_{flair,t1,t1ce,t2,seg}.nii.gz, Validation/<p>/ without seg), deterministic
// from fixed seeds so a regeneration is byte-identical. Usage:
//   node --import tsx scripts/make-samples/brats.ts [outDir]   (default data/samples/brats)
// Each head: skull ring, brain with grey/white texture and ventricles, a tumour with nested labels
// (enhancing ring 4 around necrosis 1 = core, inside edema 2; LGG with little or no 4), four modalities
// with MRI-like contrasts, a smooth bias field and noise. Geometry is built in millimetres, so the
// anisotropic patient has a smaller head in voxels but the same anatomy.
import { mkdir, rm, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, seedFromString } from '../../lib/rng.js';
import { writeNifti, type NiftiWriteDatatype } from '../../lib/nifti/write.js';

export const BRATS_MODALITIES = ['flair', 't1', 't1ce', 't2'] as const;
type Modality = (typeof BRATS_MODALITIES)[number];

type Tissue = 'background' | 'skull' | 'csf' | 'grey' | 'white' | 'edema' | 'necrosis' | 'enhancing';
const TISSUES: Tissue[] = ['background', 'skull', 'csf', 'grey', 'white', 'edema', 'necrosis', 'enhancing'];

// Mean intensity of each tissue per modality (arbitrary scanner units), MRI-like: FLAIR bright edema,
// T1ce bright enhancing ring, T2 bright edema and core, T1 dark core.
const CONTRAST: Record<Modality, Record<Tissue, number>> = {
  flair: { background: 0, skull: 160, csf: 90, grey: 420, white: 340, edema: 860, necrosis: 520, enhancing: 640 },
  t1: { background: 0, skull: 520, csf: 140, grey: 420, white: 560, edema: 360, necrosis: 170, enhancing: 400 },
  t1ce: { background: 0, skull: 520, csf: 150, grey: 430, white: 570, edema: 380, necrosis: 200, enhancing: 980 },
  t2: { background: 0, skull: 200, csf: 900, grey: 560, white: 420, edema: 840, necrosis: 930, enhancing: 720 },
};
const LABEL_OF: Record<Tissue, number> = { background: 0, skull: 0, csf: 0, grey: 0, white: 0, edema: 2, necrosis: 1, enhancing: 4 };

export interface SamplePatient {
  id: string;
  subset: 'HGG' | 'LGG' | 'Validation';
  spacing: [number, number, number];
  /** How the modalities are stored: plain int16, float32, or int16 with a scale factor in the header. */
  storage: 'int16' | 'float32' | 'int16-scaled';
}

export const SAMPLE_DIMS: [number, number, number] = [64, 64, 48];

export const SAMPLE_PATIENTS: SamplePatient[] = [
  { id: 'BraTS19_SYN_0001_1', subset: 'HGG', spacing: [1, 1, 1], storage: 'int16' },
  { id: 'BraTS19_SYN_0002_1', subset: 'HGG', spacing: [1, 1, 1], storage: 'int16' },
  { id: 'BraTS19_SYN_0003_1', subset: 'HGG', spacing: [1, 1, 1], storage: 'float32' },
  { id: 'BraTS19_SYN_0004_1', subset: 'HGG', spacing: [1.2, 1.2, 2.0], storage: 'int16' },
  { id: 'BraTS19_SYN_0005_1', subset: 'HGG', spacing: [1, 1, 1], storage: 'int16-scaled' },
  { id: 'BraTS19_SYN_0006_1', subset: 'LGG', spacing: [1, 1, 1], storage: 'int16' },
  { id: 'BraTS19_SYN_0007_1', subset: 'LGG', spacing: [1, 1, 1], storage: 'int16' },
  { id: 'BraTS19_SYN_0008_1', subset: 'LGG', spacing: [1, 1, 1], storage: 'int16' },
  { id: 'BraTS19_SYN_0101_1', subset: 'Validation', spacing: [1, 1, 1], storage: 'int16' },
  { id: 'BraTS19_SYN_0102_1', subset: 'Validation', spacing: [1, 1, 1], storage: 'int16' },
];

/** A smooth random field: a few low-frequency 3D cosines (cheap, deterministic, no grid artefacts). */
function smoothField(rng: Rng, waves: number, maxCyclesPerMm: number): (x: number, y: number, z: number) => number {
  const terms = Array.from({ length: waves }, () => ({
    fx: rng.uniform(-maxCyclesPerMm, maxCyclesPerMm) * 2 * Math.PI,
    fy: rng.uniform(-maxCyclesPerMm, maxCyclesPerMm) * 2 * Math.PI,
    fz: rng.uniform(-maxCyclesPerMm, maxCyclesPerMm) * 2 * Math.PI,
    phase: rng.uniform(0, 2 * Math.PI),
  }));
  const norm = 1 / Math.sqrt(waves / 2);
  return (x, y, z) => {
    let sum = 0;
    for (const t of terms) sum += Math.cos(t.fx * x + t.fy * y + t.fz * z + t.phase);
    return sum * norm;
  };
}

/** Radius multiplier by direction: an irregular, lobed blob instead of a perfect sphere. */
function lobes(rng: Rng, amount: number): (ux: number, uy: number, uz: number) => number {
  const c = Array.from({ length: 7 }, () => rng.uniform(-amount, amount));
  return (ux, uy, uz) =>
    1 + c[0]! * ux + c[1]! * uy + c[2]! * uz + c[3]! * ux * uy + c[4]! * uy * uz + c[5]! * ux * uz + c[6]! * (ux * ux - uy * uy);
}

export interface SynthesisedPatient {
  modalities: Record<Modality, Float32Array>;
  seg: Uint8Array;
  affine: number[];
}

export function synthesisePatient(patient: SamplePatient): SynthesisedPatient {
  const rng = new Rng(seedFromString(patient.id, 2019));
  const [X, Y, Z] = SAMPLE_DIMS;
  const [sx, sy, sz] = patient.spacing;
  const voxels = X * Y * Z;

  // Head ellipsoid radii (mm), slightly different per patient.
  const head = [rng.uniform(26, 29), rng.uniform(28, 31), rng.uniform(19, 22)];
  const skullThickness = 0.1;
  const texture = smoothField(rng, 6, 0.06);
  const bias = smoothField(rng, 3, 0.012);
  const ventricle = { x: rng.uniform(-2, 2), y: rng.uniform(-3, 3), r: [rng.uniform(3, 5), rng.uniform(6, 9), rng.uniform(4, 6)] };

  const isLgg = patient.subset === 'LGG';
  // Tumour in normalised head coordinates, kept well inside the brain; radii in mm.
  let centre: number[];
  do centre = [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.4)];
  while (Math.hypot(centre[0]!, centre[1]!, centre[2]!) > 0.5 || Math.abs(centre[0]!) < 0.12);
  const tumour = centre.map((c, axis) => c * head[axis]!);
  const edemaRadius = rng.uniform(8, 12.5);
  const coreRadius = edemaRadius * rng.uniform(0.5, 0.62);
  const necrosisShare = isLgg ? 0 : rng.uniform(0.5, 0.7);
  // LGG: a non-enhancing core (label 1), sometimes with a small enhancing focus.
  const lggFocus = isLgg && rng.next() < 0.5 ? { r: coreRadius * 0.3, offset: coreRadius * 0.4 } : null;
  const edemaShape = lobes(rng, 0.22);
  const coreShape = lobes(rng, 0.15);
  const contrastGain = Object.fromEntries(BRATS_MODALITIES.map((m) => [m, rng.uniform(0.8, 1.25)])) as Record<Modality, number>;
  const noiseSigma = rng.uniform(14, 22);

  const tissue = new Uint8Array(voxels);
  const seg = new Uint8Array(voxels);
  const texValue = new Float32Array(voxels);
  const biasValue = new Float32Array(voxels);
  for (let z = 0; z < Z; z++) {
    const pz = (z - (Z - 1) / 2) * sz;
    for (let y = 0; y < Y; y++) {
      const py = (y - (Y - 1) / 2) * sy;
      for (let x = 0; x < X; x++) {
        const px = (x - (X - 1) / 2) * sx;
        const i = x + X * (y + Y * z);
        const r = Math.hypot(px / head[0]!, py / head[1]!, pz / head[2]!);
        if (r >= 1) continue;
        let kind: Tissue;
        if (r >= 1 - skullThickness) kind = 'skull';
        else {
          const t = texture(px, py, pz);
          texValue[i] = t;
          kind = r + 0.07 * t < 0.62 ? 'white' : 'grey';
          if (r > 1 - skullThickness - 0.05) kind = 'csf';
          const vr = Math.hypot(
            (Math.abs(px - ventricle.x) - 4) / ventricle.r[0]!,
            (py - ventricle.y) / ventricle.r[1]!,
            pz / ventricle.r[2]!,
          );
          if (vr < 1) kind = 'csf';
          // Tumour, clipped to the brain.
          const dx = px - tumour[0]!;
          const dy = py - tumour[1]!;
          const dz = pz - tumour[2]!;
          const d = Math.hypot(dx, dy, dz);
          const u = d > 0 ? [dx / d, dy / d, dz / d] : [0, 0, 1];
          const dEdema = d / (edemaRadius * edemaShape(u[0]!, u[1]!, u[2]!));
          const dCore = d / (coreRadius * coreShape(u[0]!, u[1]!, u[2]!));
          if (dCore < 1) {
            if (isLgg) {
              kind = 'necrosis';
              if (lggFocus && Math.hypot(dx - lggFocus.offset, dy, dz) < lggFocus.r) kind = 'enhancing';
            } else kind = dCore < necrosisShare ? 'necrosis' : 'enhancing';
          } else if (dEdema < 1) kind = 'edema';
        }
        tissue[i] = TISSUES.indexOf(kind);
        seg[i] = LABEL_OF[kind];
        biasValue[i] = 1 + 0.12 * bias(px, py, pz);
      }
    }
  }

  const modalities = {} as Record<Modality, Float32Array>;
  for (const modality of BRATS_MODALITIES) {
    const noise = rng.fork();
    const values = new Float32Array(voxels);
    const table = CONTRAST[modality];
    const gain = contrastGain[modality];
    for (let i = 0; i < voxels; i++) {
      const kind = TISSUES[tissue[i]!]!;
      if (kind === 'background') continue;
      const mean = table[kind] * (1 + 0.06 * texValue[i]!);
      const value = (mean * biasValue[i]! + noiseSigma * noise.normal()) * gain;
      values[i] = Math.max(1, value); // brain voxels stay non-zero: z-score uses non-zero voxels
    }
    modalities[modality] = values;
  }

  // BraTS-like orientation: x and y axes flipped (LPS-style), origin at the volume centre.
  const affine = [
    -sx, 0, 0, ((X - 1) / 2) * sx,
    0, -sy, 0, ((Y - 1) / 2) * sy,
    0, 0, sz, (-(Z - 1) / 2) * sz,
    0, 0, 0, 1,
  ];
  return { modalities, seg, affine };
}

const SAMPLE_README = `# BraTS-like sample (synthetic)

Generated by \`node --import tsx scripts/make-samples/brats.ts\` (deterministic; \`test/brats/sample.test.ts\`
regenerates it and checks every file is byte-identical). Layout and label values as BraTS 2019:

- \`Training/HGG/\` 5 patients, \`Training/LGG/\` 3 patients: \`<p>_{flair,t1,t1ce,t2,seg}.nii.gz\`
- \`Validation/\` 2 patients without \`seg\`

Volumes are 64x64x48 (X, Y, Z) with a sform and qform (x/y flipped, origin at the centre). Variety on purpose:
\`BraTS19_SYN_0004_1\` has 1.2x1.2x2.0 mm voxels, \`_0003_1\` stores float32, \`_0005_1\` stores int16 with
\`scl_slope\` 0.25; the rest are int16 at 1 mm. Seg is uint8: 0 background, 1 necrotic/non-enhancing core,
2 edema, 4 enhancing tumour (LGG: little or no 4). Contrasts: FLAIR bright edema, T1ce bright enhancing
ring, T2 bright edema and core, T1 dark core; smooth bias field and Gaussian noise. Not real patient data.
`;

/** Writes the whole sample under `outDir` (replacing it atomically: build beside it, then rename). */
export async function generateBratsSample(outDir: string): Promise<void> {
  const staging = `${outDir}.staging-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  for (const patient of SAMPLE_PATIENTS) {
    const folder =
      patient.subset === 'Validation'
        ? path.join(staging, 'Validation', patient.id)
        : path.join(staging, 'Training', patient.subset, patient.id);
    await mkdir(folder, { recursive: true });
    const { modalities, seg, affine } = synthesisePatient(patient);
    const base = { dims: SAMPLE_DIMS, spacing: patient.spacing, affine };
    for (const modality of BRATS_MODALITIES) {
      const file = path.join(folder, `${patient.id}_${modality}.nii.gz`);
      const data = modalities[modality];
      if (patient.storage === 'float32') {
        await writeNifti(file, { ...base, datatype: 'float32', data, description: `flow synthetic ${modality}` });
      } else {
        const scaled = patient.storage === 'int16-scaled';
        const datatype: NiftiWriteDatatype = 'int16';
        // Scaled storage keeps quarter units: value = stored * 0.25 + 0.
        const stored = scaled ? data : data.map((v) => Math.round(v));
        await writeNifti(file, {
          ...base, datatype, data: stored, description: `flow synthetic ${modality}`,
          ...(scaled ? { sclSlope: 0.25, sclInter: 0 } : {}),
        });
      }
    }
    if (patient.subset !== 'Validation') {
      await writeNifti(path.join(folder, `${patient.id}_seg.nii.gz`), { ...base, datatype: 'uint8', data: seg, description: 'flow synthetic seg' });
    }
  }
  await writeFile(path.join(staging, 'README.md'), SAMPLE_README);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.dirname(outDir), { recursive: true });
  await rename(staging, outDir);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const outDir = path.resolve(process.argv[2] ?? path.join(repo, 'data', 'samples', 'brats'));
  await generateBratsSample(outDir);
  console.log(`BraTS sample written to ${outDir}`);
}

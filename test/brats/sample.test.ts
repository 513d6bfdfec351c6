import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { generateBratsSample, SAMPLE_PATIENTS, SAMPLE_DIMS } from '../../scripts/make-samples/brats.js';
import { readNifti } from '../../lib/nifti/read.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';

const shipped = path.join(samplesDir, 'brats');

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.push(path.relative(root, full));
    }
  };
  walk(root);
  return out.sort();
}

test('the generator reproduces the shipped BraTS sample byte for byte', async () => {
  const out = path.join(makeTempDir(), 'brats');
  await generateBratsSample(out);
  const files = listFiles(out);
  const shippedFiles = listFiles(shipped);
  assert.deepEqual(files, shippedFiles);
  assert.equal(files.filter((n) => n.endsWith('.nii.gz')).length, 8 * 5 + 2 * 4);
  for (const name of files) {
    assert.ok(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(shipped, name))), `${name} differs from the shipped file`);
  }
});

test('the shipped sample has the promised variety: spacing, datatypes, scaling, labels', async () => {
  let totalBytes = 0;
  for (const name of listFiles(shipped)) totalBytes += fs.statSync(path.join(shipped, name)).size;
  assert.ok(totalBytes < 5 * 1024 * 1024, `sample is ${totalBytes} bytes`);
  const seen = { anisotropic: false, float32: false, scaled: false };
  for (const patient of SAMPLE_PATIENTS) {
    const folder = patient.subset === 'Validation' ? path.join(shipped, 'Validation', patient.id) : path.join(shipped, 'Training', patient.subset, patient.id);
    const flair = await readNifti(path.join(folder, `${patient.id}_flair.nii.gz`));
    assert.deepEqual(flair.dims, SAMPLE_DIMS);
    if (flair.spacing[2]! > 1.5) seen.anisotropic = true;
    if (flair.datatype === 'float32') seen.float32 = true;
    if (flair.header.sclSlope !== 1 && flair.header.sclSlope !== 0) seen.scaled = true;
    if (patient.subset === 'Validation') {
      assert.ok(!fs.existsSync(path.join(folder, `${patient.id}_seg.nii.gz`)));
      continue;
    }
    const seg = await readNifti(path.join(folder, `${patient.id}_seg.nii.gz`));
    assert.equal(seg.datatype, 'uint8');
    const counts = new Map<number, number>();
    for (const v of seg.data) counts.set(v, (counts.get(v) ?? 0) + 1);
    assert.ok([...counts.keys()].every((v) => [0, 1, 2, 4].includes(v)), `${patient.id} labels ${[...counts.keys()]}`);
    assert.ok((counts.get(2) ?? 0) > 300, `${patient.id} has edema`);
    assert.ok((counts.get(1) ?? 0) > 50, `${patient.id} has a core`);
    if (patient.subset === 'HGG') assert.ok((counts.get(4) ?? 0) > 100, `${patient.id} (HGG) has an enhancing ring`);
    else assert.ok((counts.get(4) ?? 0) < (counts.get(1) ?? 0), `${patient.id} (LGG) has little enhancing tumour`);
    // FLAIR is brighter in edema than in the rest of the brain.
    let edema = 0, edemaN = 0, brain = 0, brainN = 0;
    for (let i = 0; i < seg.data.length; i++) {
      if (seg.data[i] === 2) { edema += flair.data[i]!; edemaN++; }
      else if (flair.data[i]! > 0) { brain += flair.data[i]!; brainN++; }
    }
    assert.ok(edema / edemaN > 1.5 * (brain / brainN), `${patient.id}: FLAIR edema contrast`);
  }
  assert.deepEqual(seen, { anisotropic: true, float32: true, scaled: true });
});

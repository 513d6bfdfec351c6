import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { readNifti, qformAffine } from '../../lib/nifti/read.js';
import { writeNifti, encodeNifti, affineToQuaternion, type NiftiWriteDatatype } from '../../lib/nifti/write.js';
import { makeTempDir } from '../helpers/paths.js';
import { rawNifti1, rawNifti2 } from './nifti-bytes.js';

const dims = [5, 4, 3];
const count = 5 * 4 * 3;
const ramp = (scale: number, offset: number): number[] => Array.from({ length: count }, (_, i) => i * scale + offset);

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('writeNifti → readNifti round-trips every written datatype, .nii and .nii.gz', async () => {
  const dir = makeTempDir();
  const affine = [-1.5, 0, 0, 90, 0, 1.5, 0, -126, 0, 0, 2.5, -72, 0, 0, 0, 1];
  const cases: { datatype: NiftiWriteDatatype; values: number[] }[] = [
    { datatype: 'uint8', values: ramp(4, 3) },
    { datatype: 'int16', values: ramp(-517, 12000) },
    { datatype: 'float32', values: ramp(0.37, -11.25) },
  ];
  for (const { datatype, values } of cases) {
    for (const ext of ['.nii', '.nii.gz']) {
      const file = path.join(dir, `${datatype}${ext}`);
      await writeNifti(file, { dims, spacing: [1.5, 1.5, 2.5], affine, datatype, data: values });
      const volume = await readNifti(file);
      assert.equal(volume.version, 1);
      assert.equal(volume.datatype, datatype);
      assert.deepEqual(volume.dims, dims);
      assertClose(volume.spacing, [1.5, 1.5, 2.5], 1e-6, 'spacing');
      assertClose(volume.affine, affine, 1e-5, `${datatype}${ext} affine`);
      assertClose(volume.data, values, datatype === 'float32' ? 1e-5 : 0, `${datatype}${ext} data`);
      assert.equal(volume.header.sformCode, 1);
      assert.equal(volume.header.qformCode, 1);
    }
  }
  const gz = fs.readFileSync(path.join(dir, 'int16.nii.gz'));
  assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b], 'a .nii.gz name gives a gzip file');
  assert.ok(fs.readdirSync(dir).every((name) => !name.includes('.tmp-')), 'no temp files left behind');
});

test('writeNifti refuses values that do not fit the integer type', () => {
  assert.throws(
    () => encodeNifti({ dims: [2, 1, 1], spacing: [1, 1, 1], affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], datatype: 'uint8', data: [3, 300] }),
    /value 300 at voxel 1 does not fit uint8/,
  );
});

test('reads every datatype in both byte orders', async () => {
  const dir = makeTempDir();
  const cases: { code: number; name: string; values: number[] }[] = [
    { code: 2, name: 'uint8', values: ramp(4, 1) },
    { code: 256, name: 'int8', values: ramp(2, -60) },
    { code: 4, name: 'int16', values: ramp(-300, 9000) },
    { code: 512, name: 'uint16', values: ramp(1000, 5) },
    { code: 8, name: 'int32', values: ramp(-100000, 3_000_000) },
    { code: 768, name: 'uint32', values: ramp(70000, 1) },
    { code: 16, name: 'float32', values: ramp(0.125, -3.5) },
    { code: 64, name: 'float64', values: ramp(0.0625, 1e3) },
  ];
  for (const { code, name, values } of cases) {
    for (const littleEndian of [true, false]) {
      const file = path.join(dir, `${name}-${littleEndian ? 'le' : 'be'}.nii.gz`);
      fs.writeFileSync(file, gzipSync(rawNifti1({ dims, datatypeCode: code, values, littleEndian, pixdim: [1, 0.9, 0.8, 3] })));
      const volume = await readNifti(file);
      assert.equal(volume.datatype, name);
      assert.equal(volume.header.bigEndian, !littleEndian);
      assert.deepEqual(volume.dims, dims);
      assertClose(volume.spacing, [0.9, 0.8, 3], 1e-6, `${name} spacing`);
      assertClose(volume.data, values, 0, `${name} ${littleEndian ? 'LE' : 'BE'} data`);
      // Neither form set: the affine is the diagonal of the spacing.
      assertClose(volume.affine, [0.9, 0, 0, 0, 0, 0.8, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1], 1e-6, 'default affine');
    }
  }
});

test('applies scl_slope/scl_inter, including to big-endian data; slope 0 means unscaled', async () => {
  const dir = makeTempDir();
  const stored = ramp(3, -40);
  const scaledFile = path.join(dir, 'scaled.nii');
  fs.writeFileSync(scaledFile, rawNifti1({ dims, datatypeCode: 4, values: stored, littleEndian: false, sclSlope: 0.5, sclInter: 10 }));
  const scaled = await readNifti(scaledFile);
  assertClose(scaled.data, stored.map((v) => v * 0.5 + 10), 1e-6, 'scaled');
  assert.equal(scaled.header.sclSlope, 0.5);

  const plainFile = path.join(dir, 'plain.nii');
  fs.writeFileSync(plainFile, rawNifti1({ dims, datatypeCode: 4, values: stored, sclSlope: 0, sclInter: 10 }));
  assertClose((await readNifti(plainFile)).data, stored, 0, 'slope 0 leaves data as stored');

  const written = path.join(dir, 'written.nii.gz');
  const values = ramp(0.25, 100);
  await writeNifti(written, {
    dims, spacing: [1, 1, 1], affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], datatype: 'int16', data: values, sclSlope: 0.25, sclInter: 100,
  });
  const back = await readNifti(written);
  assert.equal(back.header.sclSlope, 0.25);
  assertClose(back.data, values, 1e-6, 'writer scaling round trip');
});

test('skips header extensions (vox_offset beyond 352), in both NIfTI versions', async () => {
  const dir = makeTempDir();
  const values = ramp(1, 0);
  const extensions = [
    { code: 6, data: new TextEncoder().encode('a comment extension that pushes the data further out') },
    { code: 4, data: new Uint8Array(40).fill(0xab) },
  ];
  for (const [name, bytes] of [
    ['v1.nii.gz', rawNifti1({ dims, datatypeCode: 4, values, extensions })],
    ['v1-be.nii', rawNifti1({ dims, datatypeCode: 4, values, extensions, littleEndian: false })],
    ['v2.nii.gz', rawNifti2({ dims, datatypeCode: 4, values, extensions })],
  ] as const) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, name.endsWith('.gz') ? gzipSync(bytes) : bytes);
    const volume = await readNifti(file);
    assert.ok(volume.header.voxOffset > 352 + 64, `${name}: data start ${volume.header.voxOffset} is after the extensions`);
    assertClose(volume.data, values, 0, name);
  }
});

test('reads NIfTI-2 with float64 data, sform and big-endian bytes', async () => {
  const dir = makeTempDir();
  const values = ramp(0.5, -2);
  const srow = [[0, 0, 1.25, -10], [0, -2, 0, 30], [3, 0, 0, 7]];
  for (const littleEndian of [true, false]) {
    const file = path.join(dir, `n2-${littleEndian}.nii`);
    fs.writeFileSync(file, rawNifti2({ dims, datatypeCode: 64, values, littleEndian, pixdim: [1, 3, 2, 1.25], sformCode: 2, srow }));
    const volume = await readNifti(file);
    assert.equal(volume.version, 2);
    assert.equal(volume.datatype, 'float64');
    assert.deepEqual(volume.dims, dims);
    assertClose(volume.spacing, [3, 2, 1.25], 1e-12, 'spacing');
    assertClose(volume.affine, [...srow.flat(), 0, 0, 0, 1], 1e-12, 'sform affine');
    assertClose(volume.data, values, 0, 'data');
  }
});

test('affine: sform wins over qform, qform is used without sform, units convert to mm', async () => {
  const dir = makeTempDir();
  const values = ramp(1, 0);
  // qform: 180° about x (quaternion [0,1,0,0]) with qfac -1 → diag(dx, -dy, dz) plus offset.
  const qformOnly = path.join(dir, 'qform.nii');
  fs.writeFileSync(qformOnly, rawNifti1({ dims, datatypeCode: 2, values, pixdim: [-1, 2, 3, 4], qformCode: 1, quatern: [1, 0, 0], qoffset: [5, 6, 7] }));
  const q = await readNifti(qformOnly);
  assertClose(q.affine, [2, 0, 0, 5, 0, -3, 0, 6, 0, 0, 4, 7, 0, 0, 0, 1], 1e-6, 'qform affine');
  assert.equal(q.header.qfac, -1);

  const both = path.join(dir, 'both.nii');
  const srow = [[-2, 0, 0, 1], [0, 3, 0, 2], [0, 0, 4, 3]];
  fs.writeFileSync(both, rawNifti1({ dims, datatypeCode: 2, values, pixdim: [-1, 2, 3, 4], qformCode: 2, quatern: [1, 0, 0], qoffset: [5, 6, 7], sformCode: 1, srow }));
  assertClose((await readNifti(both)).affine, [...srow.flat(), 0, 0, 0, 1], 1e-6, 'sform preferred');

  const metres = path.join(dir, 'metres.nii');
  fs.writeFileSync(metres, rawNifti1({ dims, datatypeCode: 2, values, pixdim: [1, 0.001, 0.002, 0.003], xyztUnits: 1 }));
  assertClose((await readNifti(metres)).spacing, [1, 2, 3], 1e-6, 'metres → mm');
});

test('the written qform reproduces the affine for rotated and left-handed geometries', async () => {
  const dir = makeTempDir();
  const rotation = (angle: number): number[][] => [
    [Math.cos(angle), -Math.sin(angle), 0],
    [Math.sin(angle), Math.cos(angle), 0],
    [0, 0, 1],
  ];
  const geometries: { name: string; r: number[][]; spacing: number[]; flipZ: boolean }[] = [
    { name: 'identity', r: rotation(0), spacing: [1, 1, 1], flipZ: false },
    { name: 'rot30', r: rotation(Math.PI / 6), spacing: [1.2, 0.8, 2], flipZ: false },
    { name: 'rot180-lps', r: rotation(Math.PI), spacing: [1, 1, 1], flipZ: true },
    { name: 'rot100-flip', r: rotation((100 * Math.PI) / 180), spacing: [0.9, 0.9, 3], flipZ: true },
  ];
  for (const { name, r, spacing, flipZ } of geometries) {
    const affine: number[] = [];
    for (let row = 0; row < 3; row++) {
      for (let col = 0; col < 3; col++) affine.push(r[row]![col]! * spacing[col]! * (col === 2 && flipZ ? -1 : 1));
      affine.push([10, -20, 30][row]!);
    }
    affine.push(0, 0, 0, 1);
    const derived = affineToQuaternion(affine);
    assert.equal(derived.qfac, flipZ ? -1 : 1, `${name} qfac`);
    const file = path.join(dir, `${name}.nii.gz`);
    await writeNifti(file, { dims, spacing, affine, datatype: 'uint8', data: new Uint8Array(count) });
    const volume = await readNifti(file);
    const fromQform = qformAffine(volume.header.quatern, volume.header.qoffset, volume.spacing, volume.header.qfac);
    assertClose(fromQform, affine, 1e-5, `${name} qform`);
    assertClose(volume.affine, affine, 1e-5, `${name} sform`);
  }
});

test('errors name the file: corrupt gzip, truncated gzip, bad magic, short data', async () => {
  const dir = makeTempDir();
  const good = gzipSync(rawNifti1({ dims, datatypeCode: 4, values: ramp(1, 0) }));

  const corrupt = path.join(dir, 'corrupt.nii.gz');
  const flipped = Buffer.from(good);
  for (let i = 20; i < 40; i++) flipped[i] = flipped[i]! ^ 0x5a;
  fs.writeFileSync(corrupt, flipped);
  await assert.rejects(readNifti(corrupt), (error: Error) => {
    assert.match(error.message, new RegExp(`^${corrupt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a valid gzip stream \\(corrupt or truncated download\\?\\)`));
    return true;
  });

  const truncated = path.join(dir, 'truncated.nii.gz');
  fs.writeFileSync(truncated, good.subarray(0, good.length - 30));
  await assert.rejects(readNifti(truncated), /truncated\.nii\.gz: not a valid gzip stream/);

  const notGzip = path.join(dir, 'plain-text.nii.gz');
  fs.writeFileSync(notGzip, 'hello, this is not a volume');
  await assert.rejects(readNifti(notGzip), /plain-text\.nii\.gz: not a valid gzip stream/);

  const badMagic = path.join(dir, 'badmagic.nii');
  const bytes = rawNifti1({ dims, datatypeCode: 4, values: ramp(1, 0) });
  bytes.set([0x78, 0x78, 0x78, 0], 344);
  fs.writeFileSync(badMagic, bytes);
  await assert.rejects(readNifti(badMagic), /badmagic\.nii: bad NIfTI-1 magic/);

  const notNifti = path.join(dir, 'random.nii');
  fs.writeFileSync(notNifti, new Uint8Array(400).fill(7));
  await assert.rejects(readNifti(notNifti), /random\.nii: not a NIfTI file: sizeof_hdr/);

  const short = path.join(dir, 'short.nii');
  fs.writeFileSync(short, bytes.subarray(0, bytes.length - 10).map((b, i) => (i >= 344 && i < 348 ? [0x6e, 0x2b, 0x31, 0][i - 344]! : b)));
  await assert.rejects(readNifti(short), /short\.nii: voxel data are shorter than the header says/);

  await assert.rejects(readNifti(path.join(dir, 'missing.nii.gz')), /missing\.nii\.gz: cannot read/);
});

// The shipped Carvana sample is exactly what the committed generator writes: regenerate and compare bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { generateCarvanaSample } from '../../scripts/make-samples/carvana.js';
import { makeTempDir, samplesDir } from '../helpers/paths.js';

function listTree(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

test('regenerating the Carvana sample reproduces the committed files byte for byte', async () => {
  const outDir = makeTempDir('flow-carvana-gen-');
  const written = await generateCarvanaSample(outDir);
  const shipped = path.join(samplesDir, 'carvana');
  assert.deepEqual(listTree(outDir), listTree(shipped).filter((file) => file.startsWith('train')));
  assert.equal(written.length, 192);
  let total = 0;
  for (const file of written) {
    const fresh = fs.readFileSync(path.join(outDir, file));
    total += fresh.length;
    assert.ok(fresh.equals(fs.readFileSync(path.join(shipped, file))), `${file} differs from the committed sample`);
  }
  assert.ok(total < 3 * 1024 * 1024, `the sample must stay a few MB (is ${total} bytes)`);
  fs.rmSync(outDir, { recursive: true, force: true });
});

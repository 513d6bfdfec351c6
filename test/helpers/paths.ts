// Tests run from dist/test/** after the build; fixtures stay in the source tree (tsc does not copy them).
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

function findRepoRoot(start: string): string {
  let dir = start;
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
export const samplesDir = path.join(repoRoot, 'data', 'samples');

/** A fresh temporary folder for one test. */
export function makeTempDir(prefix = 'flow-test-'): string {
  return fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), prefix));
}

// Small filesystem helpers shared by the engine. Writes go through the one atomic-write helper
// (engine/atomic-write.ts: temp file, fsync, rename, folder fsync); these names are its synchronous forms.
import fs from 'node:fs';
import crypto from 'node:crypto';
export { writeFileAtomicSync as writeFileAtomic, writeJsonAtomicSync as writeJsonAtomic } from './atomic-write.js';
export { isPidAlive } from './process-info.js';

/** A short random suffix for temp names (unique across processes without coordination). */
export function randomSuffix(): string {
  return crypto.randomBytes(6).toString('hex');
}

/** Parses a JSON file, or returns undefined when it is missing; a damaged file is an error naming it. */
export function readJsonIfExists<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message}); delete it or restore it`);
  }
}

// Small filesystem helpers shared by the engine: writes that never leave a half-written file behind.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

/** A short random suffix for temp names (unique across processes without coordination). */
export function randomSuffix(): string {
  return crypto.randomBytes(6).toString('hex');
}

/** Writes via a temp file in the same folder + rename, so readers see the old or the new file, never half. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${randomSuffix()}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
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

export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Shared by the sample generators: atomic file writes and "was this module run directly" detection.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Writes via a temp file + rename, so an interrupted generator never leaves a half-written file. */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temp, data);
  fs.renameSync(temp, file);
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMainModule(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  return path.resolve(entry) === fileURLToPath(moduleUrl) || path.resolve(entry).replace(/\.ts$/, '.js') === fileURLToPath(moduleUrl);
}

/** `--name value` from argv, or undefined. */
export function argValue(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

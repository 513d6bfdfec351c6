// Shared by the sample generators: atomic file writes and "was this module run directly" detection.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** An interrupted generator never leaves a half-written file: flow's one atomic-write helper. */
export { writeFileAtomicSync as writeFileAtomic } from '../../engine/atomic-write.js';

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

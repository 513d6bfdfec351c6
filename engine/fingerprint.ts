// The cache key of a stage, after wireit's idea: a typed object whose every field is a reason the output
// could differ. The key is the hash of its canonical JSON; the whole object is kept beside the entry so a
// miss can be explained field by field (which param, which input, which code file changed).
import type { JsonObject, JsonValue } from './stage.js';
import { canonicalJson } from './pipeline/canonical.js';
import { hashString } from './hashing.js';

export interface Fingerprint {
  /** Format of this object; bump when its fields change meaning. */
  fingerprintVersion: 1;
  /** Built-in kind (`train`) or `command` for a shell command stage: different kinds compute different things. */
  kind: string;
  /** The stage kind's declared version (bumped when the meaning of outputs changes); `1` for commands. */
  version: string;
  /** Digest of the stage's code (sources + imported project modules + npm package versions). */
  codeDigest: string;
  /** The files behind codeDigest (relative path → digest): only to explain which file changed. */
  codeFiles: Record<string, string>;
  /** A command stage's command text with references as written (not substituted: no absolute paths). */
  command: string | null;
  /** Canonical resolved params: what the stage computes with. */
  params: JsonObject;
  /** Declared outputs (name → type and relative path): where a command writes is part of what it does. */
  outputs: Record<string, { type: 'file' | 'dir'; path: string }>;
  /** Content digest of every input by input name (upstream outputs' digests, path inputs' digests). */
  inputs: Record<string, string>;
  /**
   * Platform facts that change outputs, from the kind's platform probe (StageKind.platform); `{}` for kinds
   * without one and for commands. TensorFlow stages name the backend that will run (`auto` resolved: exact
   * results are promised for one backend only, so a GPU result must not be a wasm run's cache hit) and, on
   * wasm, whether flow's native convolutions run (a different summation order). A miss then says
   * `platform backend: wasm → tensorflow-gpu`. Where the stage runs (locally, as a scheduler's job) is no
   * platform fact: a result computed on a cluster node is a hit on a laptop with the same platform.
   */
  platform: JsonObject;
}

/** Fields that identify the stage's computation; codeFiles only explains codeDigest, so it stays out. */
export async function fingerprintKey(fp: Fingerprint): Promise<string> {
  const { codeFiles: _explanationOnly, ...keyed } = fp;
  return hashString(canonicalJson(keyed as unknown as JsonValue));
}

function short(digest: string): string {
  const bare = digest.replace(/^[fd]:/, '');
  return bare.length > 12 ? bare.slice(0, 12) + '…' : bare;
}

function show(value: JsonValue | undefined): string {
  if (value === undefined) return '(absent)';
  return typeof value === 'string' ? value : canonicalJson(value);
}

/** Leaf-level differences of two JSON values as `path: old → new` lines. */
function diffJson(prefix: string, a: JsonValue | undefined, b: JsonValue | undefined, out: string[]): void {
  const isObj = (v: JsonValue | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) diffJson(prefix === '' ? k : `${prefix}.${k}`, a[k], b[k], out);
    return;
  }
  if (a === undefined && b === undefined) return;
  if (a !== undefined && b !== undefined && canonicalJson(a) === canonicalJson(b)) return;
  out.push(`${prefix}: ${show(a)} → ${show(b)}`);
}

/** The differing middle of two strings with a little context: `…echo 3 >>… → …echo 4 >>…`. */
export function changedPart(a: string, b: string): string {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  const from = Math.max(0, start - 12);
  const clip = (s: string): string => (from > 0 ? '…' : '') + s.slice(from, s.length - end + Math.min(end, 12)) + (end > 12 ? '…' : '');
  return `${clip(a)} → ${clip(b)}`;
}

/**
 * Says exactly what changed between an earlier fingerprint of the same stage and the current one, one
 * reason per line (e.g. `param train.lr: 0.001 → 0.0001`, `code of stages/train/loop.ts changed`).
 */
export function explainMiss(prev: Fingerprint, next: Fingerprint, stageName = ''): string[] {
  const reasons: string[] = [];
  if (prev.kind !== next.kind) reasons.push(`kind ${prev.kind} → ${next.kind}`);
  if (prev.version !== next.version) reasons.push(`version ${prev.version} → ${next.version}`);
  if (prev.command !== next.command) reasons.push(`command changed: ${changedPart(prev.command ?? '', next.command ?? '')}`);
  if (prev.codeDigest !== next.codeDigest) {
    const files = [...new Set([...Object.keys(prev.codeFiles), ...Object.keys(next.codeFiles)])].sort();
    const changed = files.filter((f) => prev.codeFiles[f] !== next.codeFiles[f]);
    if (changed.length === 0) reasons.push('code changed (package versions)');
    for (const f of changed) {
      if (!(f in prev.codeFiles)) reasons.push(`code file ${f} added`);
      else if (!(f in next.codeFiles)) reasons.push(`code file ${f} removed`);
      else reasons.push(`code of ${f} changed`);
    }
  }
  const paramDiffs: string[] = [];
  diffJson(stageName, prev.params, next.params, paramDiffs);
  for (const d of paramDiffs) reasons.push(`param ${d}`);
  const inputNames = [...new Set([...Object.keys(prev.inputs), ...Object.keys(next.inputs)])].sort();
  for (const name of inputNames) {
    const a = prev.inputs[name];
    const b = next.inputs[name];
    if (a === b) continue;
    if (a === undefined) reasons.push(`input ${name} added`);
    else if (b === undefined) reasons.push(`input ${name} removed`);
    else reasons.push(`input ${name} changed (digest ${short(a)} → ${short(b)})`);
  }
  const outDiffs: string[] = [];
  diffJson('', prev.outputs as unknown as JsonValue, next.outputs as unknown as JsonValue, outDiffs);
  for (const d of outDiffs) reasons.push(`output ${d}`);
  const platformDiffs: string[] = [];
  diffJson('', prev.platform, next.platform, platformDiffs);
  for (const d of platformDiffs) reasons.push(`platform ${d}`);
  if (prev.fingerprintVersion !== next.fingerprintVersion) reasons.push('fingerprint format changed');
  return reasons; // empty: the same key as before (the caller says why there is no entry for it)
}

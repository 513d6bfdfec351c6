// Content digests of files and folders (xxhash128 via hash-wasm: a fast, well-kept non-cryptographic hash;
// the cache only needs collision resistance against accidents, not adversaries). A persistent stat cache
// keyed by (absolute path, size, mtimeNs, inode) means unchanged large inputs are not re-read on every run.
import fs from 'node:fs';
import path from 'node:path';
import { createXXHash128, xxhash128 } from 'hash-wasm';
import { writeFileAtomic } from './fs-util.js';
import { removeAbandonedTemps } from './atomic-write.js';

/** [size, mtimeNs, inode, digest] as stored in the stat cache file. */
type StatCacheRecord = [string, string, string, string];

const READ_CHUNK_BYTES = 4 * 1024 * 1024;
const YIELD_EVERY_BYTES = 64 * 1024 * 1024;

/** Digest of a string (e.g. canonical JSON): 32 hex characters. */
export function hashString(text: string): Promise<string> {
  return xxhash128(text);
}

/**
 * Remembers file digests across runs. One JSON file per cache dir; concurrent writers may overwrite each
 * other's additions, which only costs a re-read later (the records are verified against stat every time).
 */
export class StatCache {
  private records = new Map<string, StatCacheRecord>();
  private dirty = false;
  constructor(readonly file: string | null) {
    if (file === null) return;
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, StatCacheRecord>;
      for (const [p, rec] of Object.entries(parsed)) if (Array.isArray(rec) && rec.length === 4) this.records.set(p, rec);
    } catch {
      // Missing or damaged: start empty (it is only a cache).
    }
  }

  lookup(absPath: string, st: fs.BigIntStats): string | undefined {
    const rec = this.records.get(absPath);
    if (rec && rec[0] === String(st.size) && rec[1] === String(st.mtimeNs) && rec[2] === String(st.ino)) return rec[3];
    return undefined;
  }

  remember(absPath: string, st: fs.BigIntStats, digest: string): void {
    this.records.set(absPath, [String(st.size), String(st.mtimeNs), String(st.ino), digest]);
    this.dirty = true;
  }

  /** Writes the cache file if anything was added (atomically, so a crash never leaves half a file). */
  save(): void {
    if (!this.dirty || this.file === null) return;
    const obj: Record<string, StatCacheRecord> = {};
    for (const [p, rec] of this.records) if (fs.existsSync(p)) obj[p] = rec;
    removeAbandonedTemps(path.dirname(this.file)); // a killed process's half-written copy
    writeFileAtomic(this.file, JSON.stringify(obj), { durable: false }); // only a cache: a lost update costs a re-read
    this.dirty = false;
  }
}

let readBuffer: Buffer | undefined;
const freeHashers: Awaited<ReturnType<typeof createXXHash128>>[] = [];

/** Streams a file through xxhash128 without consulting any cache. */
export async function hashFileContent(absPath: string): Promise<string> {
  // Hashers are reused (instantiating one per file was a third of hashing an entry of small files); one per
  // concurrent caller, since a large file yields to the event loop mid-way.
  const hasher = freeHashers.pop() ?? (await createXXHash128());
  hasher.init();
  // Synchronous reads measured twice as fast as FileHandle.read here (bench/engine.ts); yielding to the event
  // loop every YIELD_EVERY_BYTES keeps signals and concurrent stages responsive while a large file hashes.
  const fd = fs.openSync(absPath, 'r');
  try {
    // One read buffer for all files: a fresh 4 MB per file made hashing an entry of 6,000 small files spend
    // 5 s in the garbage collector. Sharing is safe: each chunk is read and fed to the hasher synchronously.
    const buf = (readBuffer ??= Buffer.allocUnsafe(READ_CHUNK_BYTES));
    let sinceYield = 0;
    for (;;) {
      const bytesRead = fs.readSync(fd, buf, 0, READ_CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      hasher.update(bytesRead === READ_CHUNK_BYTES ? buf : buf.subarray(0, bytesRead));
      sinceYield += bytesRead;
      if (sinceYield >= YIELD_EVERY_BYTES) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  const digest = hasher.digest('hex');
  freeHashers.push(hasher);
  return digest;
}

async function hashFile(absPath: string, statCache: StatCache | null): Promise<{ digest: string; st: fs.BigIntStats }> {
  const st = await fs.promises.stat(absPath, { bigint: true });
  const known = statCache?.lookup(absPath, st);
  if (known !== undefined) return { digest: known, st };
  const digest = await hashFileContent(absPath);
  // Re-stat: if the file changed while we read it, do not remember a digest that belongs to no version.
  const after = await fs.promises.stat(absPath, { bigint: true });
  if (after.size === st.size && after.mtimeNs === st.mtimeNs) statCache?.remember(absPath, st, digest);
  return { digest, st };
}

/** One file or symlink met while digesting a path (relative to it; '' for a path that is a single file). */
export type TreeItem = { kind: 'file'; rel: string; digest: string; st: fs.BigIntStats } | { kind: 'link'; rel: string; target: string };

/**
 * Digest of a file, or of a folder: sorted relative paths with each file's digest and each symlink's
 * target (links are not followed inside folders; a top-level link is). File modes are not included.
 * `visit` sees every file and link on the way (cache manifests record them without a second read).
 */
export async function hashPath(absPath: string, statCache: StatCache | null = null, visit?: (item: TreeItem) => void): Promise<string> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(absPath);
  } catch (err) {
    throw new Error(`cannot hash ${absPath}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`);
  }
  if (!st.isDirectory()) {
    const file = await hashFile(absPath, statCache);
    visit?.({ kind: 'file', rel: '', ...file });
    return 'f:' + file.digest;
  }
  const lines: string[] = [];
  await walk(absPath, '', statCache, lines, visit);
  return 'd:' + (await xxhash128(lines.join('\n')));
}

async function walk(root: string, rel: string, statCache: StatCache | null, lines: string[], visit: ((item: TreeItem) => void) | undefined): Promise<void> {
  const dir = path.join(root, rel);
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
    const abs = path.join(root, childRel);
    if (entry.isSymbolicLink()) {
      const target = await fs.promises.readlink(abs);
      lines.push(`l ${JSON.stringify(childRel)} ${JSON.stringify(target)}`);
      visit?.({ kind: 'link', rel: childRel, target });
    } else if (entry.isDirectory()) {
      lines.push(`d ${JSON.stringify(childRel)}`);
      await walk(root, childRel, statCache, lines, visit);
    } else if (entry.isFile()) {
      const file = await hashFile(abs, statCache);
      lines.push(`f ${JSON.stringify(childRel)} ${file.digest}`);
      visit?.({ kind: 'file', rel: childRel, ...file });
    }
  }
}

/** What a cache entry records of one output: every file with its size and digest, every symlink's target. */
export interface OutputManifest {
  /** [relative path ('' for a file output), size, xxhash128] */
  files: [string, number, string][];
  links?: [string, string][];
}

/**
 * Checks a path against its manifest: the same files and links, each file of the recorded size and digest.
 * With a stat cache, a file whose (size, mtime, inode) it knows is not read again (cheap enough for every
 * cache hit); without one every file is re-read (`flow verify`). Returns the first problem, or null.
 */
export async function checkManifest(absPath: string, manifest: OutputManifest, statCache: StatCache | null, label = absPath): Promise<string | null> {
  const name = (rel: string): string => (rel === '' ? label : `${label}/${rel}`);
  const expected = new Map(manifest.files.map(([rel, size, digest]) => [rel, { size, digest }]));
  const expectedLinks = new Map(manifest.links ?? []);
  const seenFiles: { rel: string; abs: string }[] = [];
  const top = fs.lstatSync(absPath, { throwIfNoEntry: false });
  if (!top) return `${label} is missing`;
  if (top.isDirectory()) {
    const stack = [''];
    while (stack.length > 0) {
      const rel = stack.pop()!;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(path.join(absPath, rel), { withFileTypes: true });
      } catch (err) {
        return `${name(rel)} cannot be read (${(err as NodeJS.ErrnoException).code})`;
      }
      for (const entry of entries) {
        const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
        const abs = path.join(absPath, childRel);
        if (entry.isSymbolicLink()) {
          const target = expectedLinks.get(childRel);
          if (target === undefined) return `${name(childRel)} was added`;
          if (fs.readlinkSync(abs) !== target) return `${name(childRel)} (a link) changed`;
          expectedLinks.delete(childRel);
        } else if (entry.isDirectory()) stack.push(childRel);
        else if (entry.isFile()) {
          if (!expected.has(childRel)) return `${name(childRel)} was added`;
          seenFiles.push({ rel: childRel, abs });
        }
      }
    }
  } else {
    if (!expected.has('')) return `${label} is a file, but a folder was recorded`;
    seenFiles.push({ rel: '', abs: absPath });
  }
  if (seenFiles.length !== expected.size) {
    const seen = new Set(seenFiles.map((f) => f.rel));
    const missing = [...expected.keys()].find((rel) => !seen.has(rel));
    return `${name(missing ?? '')} is missing`;
  }
  const missingLink = [...expectedLinks.keys()][0];
  if (missingLink !== undefined) return `${name(missingLink)} (a link) is missing`;
  for (const { rel, abs } of seenFiles) {
    const want = expected.get(rel)!;
    const st = fs.statSync(abs, { bigint: true });
    if (Number(st.size) !== want.size) return `${name(rel)} changed (${st.size} bytes, recorded ${want.size})`;
    const digest = statCache?.lookup(abs, st) ?? (await hashFile(abs, statCache)).digest;
    if (digest !== want.digest) return `${name(rel)} changed (its content no longer matches the recorded digest)`;
  }
  return null;
}

/** Total bytes of the regular files under a path (for gc and entry.json). */
export function sizeOfPath(absPath: string): number {
  const st = fs.lstatSync(absPath, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let total = 0;
  for (const name of fs.readdirSync(absPath)) total += sizeOfPath(path.join(absPath, name));
  return total;
}

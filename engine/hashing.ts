// Content digests of files and folders (xxhash128 via hash-wasm: a fast, well-kept non-cryptographic hash;
// the cache only needs collision resistance against accidents, not adversaries). A persistent stat cache
// keyed by (absolute path, size, mtimeNs, inode) means unchanged large inputs are not re-read on every run.
import fs from 'node:fs';
import path from 'node:path';
import { createXXHash128, xxhash128 } from 'hash-wasm';
import { writeFileAtomic } from './fs-util.js';

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
    writeFileAtomic(this.file, JSON.stringify(obj));
    this.dirty = false;
  }
}

/** Streams a file through xxhash128 without consulting any cache. */
export async function hashFileContent(absPath: string): Promise<string> {
  const hasher = await createXXHash128();
  hasher.init();
  // Synchronous reads measured twice as fast as FileHandle.read here (bench/engine.ts); yielding to the event
  // loop every YIELD_EVERY_BYTES keeps signals and concurrent stages responsive while a large file hashes.
  const fd = fs.openSync(absPath, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
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
  return hasher.digest('hex');
}

async function hashFile(absPath: string, statCache: StatCache | null): Promise<string> {
  const st = await fs.promises.stat(absPath, { bigint: true });
  const known = statCache?.lookup(absPath, st);
  if (known !== undefined) return known;
  const digest = await hashFileContent(absPath);
  // Re-stat: if the file changed while we read it, do not remember a digest that belongs to no version.
  const after = await fs.promises.stat(absPath, { bigint: true });
  if (after.size === st.size && after.mtimeNs === st.mtimeNs) statCache?.remember(absPath, st, digest);
  return digest;
}

/**
 * Digest of a file, or of a folder: sorted relative paths with each file's digest and each symlink's
 * target (links are not followed inside folders; a top-level link is). File modes are not included.
 */
export async function hashPath(absPath: string, statCache: StatCache | null = null): Promise<string> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(absPath);
  } catch (err) {
    throw new Error(`cannot hash ${absPath}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`);
  }
  if (!st.isDirectory()) return 'f:' + (await hashFile(absPath, statCache));
  const lines: string[] = [];
  await walk(absPath, '', statCache, lines);
  return 'd:' + (await xxhash128(lines.join('\n')));
}

async function walk(root: string, rel: string, statCache: StatCache | null, lines: string[]): Promise<void> {
  const dir = path.join(root, rel);
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
    const abs = path.join(root, childRel);
    if (entry.isSymbolicLink()) {
      lines.push(`l ${JSON.stringify(childRel)} ${JSON.stringify(await fs.promises.readlink(abs))}`);
    } else if (entry.isDirectory()) {
      lines.push(`d ${JSON.stringify(childRel)}`);
      await walk(root, childRel, statCache, lines);
    } else if (entry.isFile()) {
      lines.push(`f ${JSON.stringify(childRel)} ${await hashFile(abs, statCache)}`);
    }
  }
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

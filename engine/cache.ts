// The content-addressed stage cache:
//   <cacheDir>/entries/<key>/{outs/<name>, fingerprint.json, entry.json}   only a folder with entry.json counts
//   <cacheDir>/tmp/<key>-<random>/outs/...                                  where a running stage writes
//   <cacheDir>/checkpoints/<key>/  (+ <key>.json: which run/stage wrote it) survives interruption
//   <cacheDir>/locks/<key>.lock                                             lease lock while a key computes
//   <cacheDir>/locks/<key>.command.json                                     the process group of its running command
//   <cacheDir>/trash/                  what is being deleted (renamed here first, so a crash never half-deletes an entry)
//   <cacheDir>/damaged/<key>-<time>/   entries that failed verification, kept for inspection until `flow gc`
//   <cacheDir>/index/<pipeline>/<stage>.json                                the latest fingerprint per stage
//   <cacheDir>/stat-cache.json                                              file digests by (path,size,mtime,inode)
// Entries are verified on every reuse (their manifest against the files, through the stat cache) and their
// files made read-only once committed, as DVC protects its cache.
import fs from 'node:fs';
import path from 'node:path';
import type { Fingerprint } from './fingerprint.js';
import { randomSuffix, readJsonIfExists, writeJsonAtomic } from './fs-util.js';
import { fsyncDirSync, removeAbandonedTemps } from './atomic-write.js';
import { checkManifest, hashPath, StatCache, type OutputManifest } from './hashing.js';
import { acquire, breakStaleLock, describeHolder, inspectLock, type Lease, type LockStatus } from './lease-lock.js';

export interface EntryOutput {
  type: 'file' | 'dir';
  /** Path relative to the entry's outs/ folder. */
  path: string;
  digest: string;
  size: number;
}

export interface EntryRecord {
  key: string;
  stage: string;
  pipeline: string;
  outputs: Record<string, EntryOutput>;
  created: string;
  durationMs: number;
  /** Every file of every output with its size and digest (entries written before manifests have none). */
  manifest?: Record<string, OutputManifest>;
}

/** Why an entry cannot be reused (it was moved aside; the stage recomputes). */
export interface DamagedEntry {
  damaged: string;
}

export interface IndexRecord {
  key: string;
  run: string;
  updated: string;
  fingerprint: Fingerprint;
}

export class Cache {
  readonly statCache: StatCache;
  constructor(readonly dir: string) {
    this.statCache = new StatCache(path.join(dir, 'stat-cache.json'));
  }

  entryDir(key: string): string {
    return path.join(this.dir, 'entries', key);
  }
  checkpointDir(key: string): string {
    return path.join(this.dir, 'checkpoints', key);
  }

  /** The committed entry for a key, or undefined (a folder without entry.json is not an entry). */
  readEntry(key: string): EntryRecord | undefined {
    try {
      return readJsonIfExists<EntryRecord>(path.join(this.entryDir(key), 'entry.json'));
    } catch {
      return undefined; // damaged entry.json: not an entry (findReusable moves it aside)
    }
  }

  /**
   * The entry for `key` if it can be reused: entry.json readable and every output matching its manifest
   * (sizes, and digests through the stat cache, so an unchanged entry costs a stat per file). A damaged or
   * incomplete entry is moved aside and reported, so the caller recomputes the stage.
   */
  async findReusable(key: string): Promise<EntryRecord | DamagedEntry | undefined> {
    const dir = this.entryDir(key);
    let entry: EntryRecord | undefined;
    try {
      entry = readJsonIfExists<EntryRecord>(path.join(dir, 'entry.json'));
    } catch {
      return { damaged: this.quarantine(key, 'entry.json is not readable') };
    }
    if (!entry) {
      // A folder without entry.json is what a crash mid-delete (older flow's gc) leaves: incomplete, not fatal.
      if (fs.existsSync(dir)) this.moveToTrash(dir);
      return undefined;
    }
    const problem = await this.checkEntry(entry, this.statCache);
    if (problem !== null) return { damaged: this.quarantine(key, problem) };
    return entry;
  }

  /**
   * The first problem of an entry's outputs, or null. With `statCache` null every file is re-read (flow
   * verify); entries without a manifest are checked against their outputs' digests.
   */
  async checkEntry(entry: EntryRecord, statCache: StatCache | null): Promise<string | null> {
    for (const [name, out] of Object.entries(entry.outputs)) {
      const abs = this.outputPath(entry.key, out);
      const where = `outs/${out.path}`;
      const manifest = entry.manifest?.[name];
      if (manifest) {
        const problem = await checkManifest(abs, manifest, statCache, where);
        if (problem !== null) return problem;
        continue;
      }
      if (!fs.existsSync(abs)) return `${where} is missing`;
      if ((await hashPath(abs, statCache)) !== out.digest) return `${where} changed (its content no longer matches the recorded digest)`;
    }
    return null;
  }

  /** Moves a damaged entry to damaged/ (kept for inspection until gc); returns the reason for the miss line. */
  quarantine(key: string, problem: string): string {
    const target = path.join(this.dir, 'damaged', `${key}-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomSuffix()}`);
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.renameSync(this.entryDir(key), target);
      return `entry damaged: ${problem} (moved to ${target})`;
    } catch {
      return `entry damaged: ${problem}`; // another process moved it first
    }
  }

  /** Renames a path into trash/ (atomic), then deletes it; a crash in between leaves only trash to empty. */
  moveToTrash(p: string): void {
    const trash = path.join(this.dir, 'trash');
    const target = path.join(trash, `${path.basename(p)}-${randomSuffix()}`);
    try {
      fs.mkdirSync(trash, { recursive: true });
      fs.renameSync(p, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    fs.rmSync(target, { recursive: true, force: true });
  }

  /** Deletes whatever an earlier process left in trash/ (it was renamed there, so nothing uses it). */
  emptyTrash(): number {
    const trash = path.join(this.dir, 'trash');
    let names: string[];
    try {
      names = fs.readdirSync(trash);
    } catch {
      return 0;
    }
    for (const name of names) fs.rmSync(path.join(trash, name), { recursive: true, force: true });
    return names.length;
  }

  readFingerprint(key: string): Fingerprint | undefined {
    return (
      readJsonIfExists<Fingerprint>(path.join(this.entryDir(key), 'fingerprint.json')) ??
      readJsonIfExists<Fingerprint>(path.join(this.dir, 'checkpoints', `${key}.fingerprint.json`))
    );
  }

  outputPath(key: string, out: EntryOutput): string {
    return path.join(this.entryDir(key), 'outs', out.path);
  }

  /**
   * A fresh temp folder for one computation of `key`; its outs/ holds what the stage writes. Called under the
   * key's lock, so other temp folders of the key are left by dead computations (a SIGKILL): removed here.
   */
  makeTemp(key: string): string {
    const tmp = path.join(this.dir, 'tmp');
    let names: string[] = [];
    try {
      names = fs.readdirSync(tmp);
    } catch {
      // no tmp/ yet
    }
    for (const name of names) if (name.startsWith(`${key}-`)) this.moveToTrash(path.join(tmp, name));
    const dir = path.join(tmp, `${key}-${randomSuffix()}`);
    fs.mkdirSync(path.join(dir, 'outs'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'work'), { recursive: true });
    return dir;
  }

  /**
   * Digests the outputs in a temp folder, writes fingerprint.json and entry.json, and renames the folder to
   * entries/<key>. If another process committed the key first, ours is discarded and theirs used; with
   * `replace` (a forced re-run) ours replaces theirs.
   */
  async commit(
    tempDir: string,
    fp: Fingerprint,
    key: string,
    meta: { stage: string; pipeline: string; durationMs: number },
    outputs: Record<string, { type: 'file' | 'dir'; path: string }>,
    replace: boolean,
  ): Promise<EntryRecord> {
    const recorded: Record<string, EntryOutput> = {};
    const manifest: Record<string, OutputManifest> = {};
    // The files' stats at hashing time; after the rename into entries/ (same inodes, same mtimes) they seed the
    // stat cache under their final paths, so the next reuse verifies them without reading them again.
    const seen: { rel: string; st: fs.BigIntStats; digest: string }[] = [];
    for (const [name, out] of Object.entries(outputs)) {
      const abs = path.join(tempDir, 'outs', out.path);
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (!st) throw new Error(`output ${name} (${out.path}) was not created`);
      if (out.type === 'dir' && !st.isDirectory()) throw new Error(`output ${name} should be a folder but ${abs} is a file`);
      if (out.type === 'file' && st.isDirectory()) throw new Error(`output ${name} should be a file but ${abs} is a folder`);
      const files: OutputManifest['files'] = [];
      const links: [string, string][] = [];
      // Outputs are hashed without the stat cache: temp paths are never seen again.
      const digest = await hashPath(abs, null, (item) => {
        if (item.kind === 'link') links.push([item.rel, item.target]);
        else {
          files.push([item.rel, Number(item.st.size), item.digest]);
          seen.push({ rel: item.rel === '' ? out.path : `${out.path}/${item.rel}`, st: item.st, digest: item.digest });
        }
      });
      recorded[name] = { type: out.type, path: out.path, digest, size: files.reduce((n, f) => n + f[1], 0) };
      manifest[name] = links.length > 0 ? { files, links } : { files };
    }
    fs.rmSync(path.join(tempDir, 'work'), { recursive: true, force: true });
    // Read-only, as DVC protects its cache: a user editing a file through a run's stages/ link gets EACCES
    // instead of silently changing a result that other runs share. (chmod changes ctime, not mtime.)
    for (const file of seen) fs.chmodSync(path.join(tempDir, 'outs', file.rel), 0o444);
    const entry: EntryRecord = { key, stage: meta.stage, pipeline: meta.pipeline, outputs: recorded, created: new Date().toISOString(), durationMs: meta.durationMs, manifest };
    writeJsonAtomic(path.join(tempDir, 'fingerprint.json'), fp);
    writeJsonAtomic(path.join(tempDir, 'entry.json'), entry); // last: it is what makes the folder an entry
    const target = this.entryDir(key);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (replace && fs.existsSync(target)) this.moveToTrash(target);
    for (let attempt = 0; ; attempt++) {
      try {
        fs.renameSync(tempDir, target);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
      const theirs = await this.findReusable(key);
      if (theirs && !('damaged' in theirs)) {
        // Another process committed the same key first: use theirs.
        fs.rmSync(tempDir, { recursive: true, force: true });
        this.removeCheckpoint(key);
        return theirs;
      }
      // Theirs was damaged or incomplete and is now moved aside; ours takes the name.
      if (attempt >= 2) throw new Error(`cannot commit the cache entry ${target}: another process keeps replacing it`);
    }
    fsyncDirSync(path.dirname(target));
    for (const file of seen) this.statCache.remember(path.join(target, 'outs', file.rel), file.st, file.digest);
    this.removeCheckpoint(key);
    return entry;
  }

  discardTemp(tempDir: string): void {
    fs.rmSync(tempDir, { recursive: true, force: true });
  }

  /** Whether a checkpoint from an interrupted computation of this key is waiting, and which run left it. */
  checkpointInfo(key: string): { run: string; stage: string } | undefined {
    const dir = this.checkpointDir(key);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return undefined;
    }
    if (names.length === 0) return undefined;
    return readJsonIfExists<{ run: string; stage: string }>(path.join(this.dir, 'checkpoints', `${key}.json`)) ?? { run: 'unknown', stage: '' };
  }

  /** Creates the key's checkpoint folder and notes who owns it (for "resuming ... from run <id>"). */
  prepareCheckpoint(key: string, fp: Fingerprint, owner: { run: string; stage: string }): string {
    const dir = this.checkpointDir(key);
    fs.mkdirSync(dir, { recursive: true });
    removeAbandonedTemps(path.dirname(dir)); // half-written notes of a killed process
    writeJsonAtomic(path.join(this.dir, 'checkpoints', `${key}.json`), owner);
    writeJsonAtomic(path.join(this.dir, 'checkpoints', `${key}.fingerprint.json`), fp);
    return dir;
  }

  removeCheckpoint(key: string): void {
    fs.rmSync(this.checkpointDir(key), { recursive: true, force: true });
    fs.rmSync(path.join(this.dir, 'checkpoints', `${key}.json`), { force: true });
    fs.rmSync(path.join(this.dir, 'checkpoints', `${key}.fingerprint.json`), { force: true });
  }

  indexFile(pipeline: string, stage: string): string {
    return path.join(this.dir, 'index', encodeURIComponent(pipeline), `${encodeURIComponent(stage)}.json`);
  }
  readIndex(pipeline: string, stage: string): IndexRecord | undefined {
    try {
      return readJsonIfExists<IndexRecord>(this.indexFile(pipeline, stage));
    } catch {
      return undefined;
    }
  }
  writeIndex(pipeline: string, stage: string, record: IndexRecord): void {
    writeJsonAtomic(this.indexFile(pipeline, stage), record);
  }

  /**
   * locks/ holds only what is in flight, so a lock holder can afford to clear what dead processes left there:
   * half-written files, and stale locks of keys nobody asked for again (not those with a command record: the
   * next computation of that key must first stop the command it names).
   */
  private sweepLocks(): void {
    const dir = path.join(this.dir, 'locks');
    removeAbandonedTemps(dir);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!name.endsWith('.lock') || names.includes(`${name.slice(0, -'.lock'.length)}.command.json`)) continue;
      const status = inspectLock(path.join(dir, name));
      if (status.state === 'stale') breakStaleLock(path.join(dir, name), status);
    }
  }

  /** Where a command stage records its running process group (engine/command-stage.ts). */
  commandRecordFile(key: string): string {
    return path.join(this.dir, 'locks', `${key}.command.json`);
  }

  lockFile(key: string): string {
    return path.join(this.dir, 'locks', `${key}.lock`);
  }

  /**
   * Takes the cross-process lease lock of a key (engine/lease-lock.ts: it never blocks past a dead holder's
   * lease). Calls `stillNeeded` between tries so a waiter can stop once the holder committed the entry, and
   * `onWait` after a few seconds of waiting with a sentence naming the holder. Returns the lease, or null when
   * `stillNeeded` said no or `signal` fired.
   */
  async lock(key: string, opts: { stillNeeded: () => boolean; signal?: AbortSignal; purpose?: string; onWait?: (message: string) => void }): Promise<Lease | null> {
    const file = this.lockFile(key);
    const lease = await acquire(file, {
      stillNeeded: opts.stillNeeded,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.purpose ? { purpose: opts.purpose } : {}),
      onWait: (holder: LockStatus & { state: 'held' }, waitedMs: number) =>
        opts.onWait?.(`waiting ${Math.round(waitedMs / 1000)} s for the lock of key ${key.slice(0, 8)}…: ${describeHolder(file, holder)}`),
    });
    if (lease) this.sweepLocks();
    return lease;
  }
}

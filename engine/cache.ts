// The content-addressed stage cache:
//   <cacheDir>/entries/<key>/{outs/<name>, fingerprint.json, entry.json}   only a folder with entry.json counts
//   <cacheDir>/tmp/<key>-<random>/outs/...                                  where a running stage writes
//   <cacheDir>/checkpoints/<key>/  (+ <key>.json: which run/stage wrote it) survives interruption
//   <cacheDir>/locks/<key>.lock                                             O_EXCL lock while a key computes
//   <cacheDir>/index/<pipeline>/<stage>.json                                the latest fingerprint per stage
//   <cacheDir>/stat-cache.json                                              file digests by (path,size,mtime,inode)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Fingerprint } from './fingerprint.js';
import { isPidAlive, randomSuffix, readJsonIfExists, writeJsonAtomic } from './fs-util.js';
import { hashPath, sizeOfPath, StatCache } from './hashing.js';

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
}

export interface IndexRecord {
  key: string;
  run: string;
  updated: string;
  fingerprint: Fingerprint;
}

interface LockOwner {
  pid: number;
  host: string;
  created: string;
}

/** A lock older than this whose holder we cannot check (another host) is taken as abandoned. */
const FOREIGN_LOCK_STALE_MS = 60_000;
const LOCK_HEARTBEAT_MS = 10_000;

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
    return readJsonIfExists<EntryRecord>(path.join(this.entryDir(key), 'entry.json'));
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

  /** A fresh temp folder for one computation of `key`; its outs/ holds what the stage writes. */
  makeTemp(key: string): string {
    const dir = path.join(this.dir, 'tmp', `${key}-${randomSuffix()}`);
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
    for (const [name, out] of Object.entries(outputs)) {
      const abs = path.join(tempDir, 'outs', out.path);
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      if (!st) throw new Error(`output ${name} (${out.path}) was not created`);
      if (out.type === 'dir' && !st.isDirectory()) throw new Error(`output ${name} should be a folder but ${abs} is a file`);
      if (out.type === 'file' && st.isDirectory()) throw new Error(`output ${name} should be a file but ${abs} is a folder`);
      // Outputs are hashed without the stat cache: temp paths are never seen again.
      recorded[name] = { type: out.type, path: out.path, digest: await hashPath(abs, null), size: sizeOfPath(abs) };
    }
    fs.rmSync(path.join(tempDir, 'work'), { recursive: true, force: true });
    const entry: EntryRecord = { key, stage: meta.stage, pipeline: meta.pipeline, outputs: recorded, created: new Date().toISOString(), durationMs: meta.durationMs };
    writeJsonAtomic(path.join(tempDir, 'fingerprint.json'), fp);
    writeJsonAtomic(path.join(tempDir, 'entry.json'), entry); // last: it is what makes the folder an entry
    const target = this.entryDir(key);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (replace && fs.existsSync(target)) {
      const trash = path.join(this.dir, 'tmp', `trash-${key}-${randomSuffix()}`);
      try {
        fs.renameSync(target, trash);
        fs.rmSync(trash, { recursive: true, force: true });
      } catch {
        // Someone else moved it first; fall through to our rename.
      }
    }
    try {
      fs.renameSync(tempDir, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      const theirs = this.readEntry(key);
      if (!theirs) throw new Error(`cache entry ${target} exists but has no entry.json; remove it and re-run`);
      fs.rmSync(tempDir, { recursive: true, force: true });
      this.removeCheckpoint(key);
      return theirs;
    }
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
   * Takes the cross-process lock of a key (O_EXCL lock file holding pid + host). Waits while another live
   * process holds it; calls `stillNeeded` between tries so a waiter can stop once the holder committed the
   * entry. Returns a release function, or null when `stillNeeded` said no.
   */
  async lock(key: string, stillNeeded: () => boolean, signal?: AbortSignal): Promise<(() => void) | null> {
    const file = path.join(this.dir, 'locks', `${key}.lock`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const me: LockOwner = { pid: process.pid, host: os.hostname(), created: new Date().toISOString() };
    for (;;) {
      try {
        fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
        const beat = setInterval(() => {
          const now = new Date();
          try {
            fs.utimesSync(file, now, now);
          } catch {
            // lock file removed underneath us: nothing to refresh
          }
        }, LOCK_HEARTBEAT_MS);
        beat.unref();
        return () => {
          clearInterval(beat);
          fs.rmSync(file, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (this.lockIsStale(file)) {
        // Move the stale lock aside (rename is atomic: of two processes judging it stale, one wins).
        try {
          fs.renameSync(file, `${file}.stale-${randomSuffix()}`);
          for (const name of fs.readdirSync(path.dirname(file))) {
            if (name.startsWith(`${key}.lock.stale-`)) fs.rmSync(path.join(path.dirname(file), name), { force: true });
          }
        } catch {
          // someone else cleared it
        }
        continue;
      }
      if (!stillNeeded()) return null;
      if (signal?.aborted) return null;
      await new Promise((r) => setTimeout(r, 100));
      if (!stillNeeded()) return null;
    }
  }

  private lockIsStale(file: string): boolean {
    let owner: LockOwner;
    let mtimeMs: number;
    try {
      owner = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch {
      // Vanished (released) or half-written by its creator this instant: not stale, retry.
      return false;
    }
    if (owner.host === os.hostname()) return owner.pid !== process.pid && !isPidAlive(owner.pid);
    return Date.now() - mtimeMs > FOREIGN_LOCK_STALE_MS;
  }
}

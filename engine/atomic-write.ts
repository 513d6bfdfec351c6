// The one atomic-write helper of flow (the engine and lib/ both use it; lib/atomic.ts re-exports it): data goes
// to a hidden temp name in the same folder, is fsynced, renamed over the final name, and the folder is fsynced,
// so after a crash or power cut a reader sees the old file or the new one, never half of one. On failure the
// temp file is removed and the error names the file, what went wrong and, for a full disk, how much is free.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import os from 'node:os';
import { isPidAlive } from './process-info.js';

// Temp names carry the writer's host and pid, so a leftover of a killed writer can be told from a write in
// progress, even on a filesystem that several hosts share.
const HOST_TAG = os.hostname().replace(/[^A-Za-z0-9.-]/g, '_');
const TEMP_NAME = /^\..+\.tmp-(.+)-(\d+)-[0-9a-f]{12}$/;
/** A temp file of another host is taken as abandoned only after this long (atomic writes take milliseconds). */
const FOREIGN_TEMP_STALE_MS = 60 * 60_000;

/** A unique hidden temp name beside `target` (unique across processes and hosts without coordination). */
export function tempNameBeside(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${HOST_TAG}-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
}

/**
 * Whether `name` (in `dir`) is a temp file of tempNameBeside's left by a writer that is gone: one of this host
 * whose process is dead, or one of another host older than an hour.
 */
export function isAbandonedTemp(dir: string, name: string): boolean {
  const m = TEMP_NAME.exec(name);
  if (!m) return false;
  if (m[1] === HOST_TAG) return !isPidAlive(Number(m[2]));
  const st = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
  return st !== undefined && Date.now() - st.mtimeMs > FOREIGN_TEMP_STALE_MS;
}

/** Removes abandoned temp files (isAbandonedTemp) directly in `dir`; returns their paths. */
export function removeAbandonedTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!isAbandonedTemp(dir, name)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

/** "12.0 MB free on /mnt/x" (or null when the filesystem cannot say). */
export function freeSpaceText(target: string): string | null {
  let dir = path.dirname(path.resolve(target));
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    const st = fs.statfsSync(dir);
    return `${formatBytes(Number(st.bavail) * Number(st.bsize))} free on the filesystem of ${dir}`;
  } catch {
    return null;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), (i += 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

const SPACE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * An error saying which file could not be written and why, keeping the original as `cause` (and its code, so
 * callers can still branch on ENOSPC). A full disk adds how much space is left and what to do.
 */
export function writeError(file: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  let message = `cannot write ${file}: ${(err as Error).message}`;
  if (code !== undefined && SPACE_CODES.has(code)) {
    const free = freeSpaceText(file);
    message = `cannot write ${file}: no space left (${code}${free ? `; ${free}` : ''}); free some space (\`flow gc\` deletes unreferenced cache entries) and run again`;
  }
  const wrapped = new Error(message, { cause: err }) as NodeJS.ErrnoException;
  if (code !== undefined) wrapped.code = code;
  return wrapped;
}

/** fsync of a folder, so a rename or a new name in it survives a power cut (some filesystems refuse: ignored). */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // EISDIR/EINVAL/EPERM on filesystems without folder fsync: the rename itself is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch {
    // as in fsyncDirSync
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `data` to a new file (fsynced unless `durable` is false) at `file`, which must not exist yet; removes
 * it on failure. The error names `reportAs` (the file the caller means to write, not its temp name).
 */
export function writeNewFileSync(file: string, data: string | Uint8Array, reportAs = file, durable = true): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'wx');
    fs.writeFileSync(fd, data);
    if (durable) fs.fsyncSync(fd);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
    fs.rmSync(file, { force: true });
    throw writeError(reportAs, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface AtomicWriteOptions {
  /**
   * false for derived files that are rebuilt from others (report.html, the stat cache): still atomic (a reader
   * sees old or new), but not fsynced, so they cost a fully cached run no disk flushes. Default true.
   */
  durable?: boolean;
}

/** Synchronous atomic write (the engine's state files, and the signal path, where nothing may be awaited). */
export function writeFileAtomicSync(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const durable = options.durable ?? true;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (err) {
    throw writeError(file, err);
  }
  const temp = tempNameBeside(file);
  writeNewFileSync(temp, data, file, durable);
  try {
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw writeError(file, err);
  }
  if (durable) fsyncDirSync(path.dirname(file));
}

export function writeJsonAtomicSync(file: string, value: unknown): void {
  writeFileAtomicSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The asynchronous twin for stages and lib/ (same temp name, fsyncs and cleanup). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const temp = tempNameBeside(file);
  let handle: fs.promises.FileHandle | undefined;
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    handle = await fs.promises.open(temp, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(temp, file);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.promises.rm(temp, { force: true });
    throw writeError(file, err);
  }
  await fsyncDir(path.dirname(file));
}

/** Copies a file atomically (copy under a temp name, fsync, rename, folder fsync). */
export async function copyFileAtomic(from: string, to: string): Promise<void> {
  const temp = tempNameBeside(to);
  try {
    await fs.promises.copyFile(from, temp, fs.constants.COPYFILE_FICLONE);
    const handle = await fs.promises.open(temp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temp, to);
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw writeError(to, err);
  }
  await fsyncDir(path.dirname(to));
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * An append-only log file for pino that never throws into the code that logs: the first failed write (disk
 * full) is reported once through `onError` and logging stops, while the run goes on and says so.
 */
export class AppendOnlyLog {
  private fd: number | null;
  private failed = false;
  constructor(readonly file: string, private readonly onError: (err: Error) => void) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'a');
  }

  write(chunk: string): boolean {
    if (this.fd === null || this.failed) return true;
    try {
      fs.writeSync(this.fd, chunk);
    } catch (err) {
      this.failed = true;
      this.onError(writeError(this.file, err));
    }
    return true;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

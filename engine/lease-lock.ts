// Lease locks: mutual exclusion between flow processes that share a folder, on one host or many (a cluster's
// shared filesystem), that can never block forever. A lock is a small JSON file naming its holder; it is
// written completely under a temp name and then hard-linked into place (link fails atomically when the name
// exists), so no reader ever sees a half-written lock. While held, a heartbeat refreshes the file's mtime.
// A lock is stale, and may be taken over, when
//   - its heartbeat is older than the lease (the holder died, hung, or lost its host), or
//   - its content cannot be read as a lock (a 0-byte or damaged file from a crash of an older writer), or
//   - its holder is on this host and that process is gone (dead, a zombie, or its pid now names another
//     process): a fast path only; across hosts only the heartbeat counts.
// The rule needs nothing but the shared folder, so a Slurm executor can use it for cross-host locks as is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { tempNameBeside, writeError, writeNewFileSync } from './atomic-write.js';
import { isSameProcessAlive, processStartTime } from './process-info.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** When the lock was taken (ISO). */
  created: string;
  /** Unique per acquisition: tells our lock from a successor's at the same path. */
  token: string;
  /** The holder's process start time on its host (pid-reuse check), when the platform says. */
  procStart?: string | null;
  /** What the holder does under the lock (e.g. "stage train of run X"), for waiters' messages. */
  purpose?: string;
}

export interface LeaseOptions {
  /** A lock whose heartbeat is older than this is stale (default FLOW_LOCK_LEASE_MS or 60 s). */
  leaseMs?: number;
  /** How often the holder refreshes it (default a sixth of the lease). */
  heartbeatMs?: number;
  purpose?: string;
}

export type LockStatus =
  | { state: 'free' }
  | { state: 'held'; owner: LockOwner; heartbeatAgeMs: number; ino: number }
  | { state: 'stale'; reason: string; owner: LockOwner | null; ino: number };

export interface Lease {
  readonly file: string;
  readonly owner: LockOwner;
  /** False once another process took the lock over (our heartbeat was too old, or the file was removed). */
  held(): boolean;
  release(): void;
}

export const DEFAULT_LEASE_MS = 60_000;

export function leaseMsOf(opts: LeaseOptions = {}): number {
  const env = Number(process.env.FLOW_LOCK_LEASE_MS);
  return opts.leaseMs ?? (Number.isFinite(env) && env > 0 ? env : DEFAULT_LEASE_MS);
}

function parseOwner(text: string): LockOwner | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const o = value as Record<string, unknown>;
  if (typeof o.pid !== 'number' || typeof o.host !== 'string') return null;
  return {
    pid: o.pid,
    host: o.host,
    created: typeof o.created === 'string' ? o.created : '',
    token: typeof o.token === 'string' ? o.token : '',
    procStart: typeof o.procStart === 'string' ? o.procStart : null,
    ...(typeof o.purpose === 'string' ? { purpose: o.purpose } : {}),
  };
}

/** Reads a lock and judges it by the lease rule (see the top of this file). */
export function inspectLock(file: string, opts: LeaseOptions = {}): LockStatus {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free' };
    throw err;
  }
  const owner = parseOwner(text);
  if (owner === null) return { state: 'stale', reason: text.length === 0 ? 'the lock file is empty' : 'the lock file is not a readable lock', owner: null, ino: st.ino };
  const heartbeatAgeMs = Math.max(0, Date.now() - st.mtimeMs);
  const lease = leaseMsOf(opts);
  if (heartbeatAgeMs > lease) return { state: 'stale', reason: `its heartbeat is ${Math.round(heartbeatAgeMs / 1000)} s old (lease ${Math.round(lease / 1000)} s)`, owner, ino: st.ino };
  if (owner.host === os.hostname() && owner.pid !== process.pid && !isSameProcessAlive(owner.pid, owner.procStart)) {
    return { state: 'stale', reason: `its holder (pid ${owner.pid}) is no longer running`, owner, ino: st.ino };
  }
  return { state: 'held', owner, heartbeatAgeMs, ino: st.ino };
}

/**
 * Removes a stale lock, if it is still the one that was judged (same inode): it is renamed aside first (of two
 * processes judging it stale only one rename succeeds), and put back if a successor's lock was caught instead.
 */
export function breakStaleLock(file: string, judged: { ino: number }): void {
  const aside = tempNameBeside(file); // a crash before its removal leaves an abandoned temp (removed by the next holder)
  try {
    fs.renameSync(file, aside);
  } catch {
    return; // someone else removed it
  }
  try {
    if (fs.statSync(aside).ino !== judged.ino) {
      // A fresh lock took its place between our look and the rename: give it back.
      try {
        fs.linkSync(aside, file);
      } catch {
        // the name was taken again meanwhile; the newest holder keeps it
      }
    }
  } finally {
    fs.rmSync(aside, { force: true });
  }
}

function startHeartbeat(file: string, owner: LockOwner, everyMs: number): { held(): boolean; stop(): void } {
  let lost = false;
  const beat = setInterval(() => {
    try {
      const current = parseOwner(fs.readFileSync(file, 'utf8'));
      if (current?.token !== owner.token) {
        lost = true;
        clearInterval(beat);
        return;
      }
      const now = new Date();
      fs.utimesSync(file, now, now);
    } catch {
      lost = true;
      clearInterval(beat);
    }
  }, everyMs);
  beat.unref();
  return { held: () => !lost, stop: () => clearInterval(beat) };
}

/** One attempt: takes the lock if it is free or stale; null when a live holder has it. */
export function tryAcquire(file: string, opts: LeaseOptions = {}): Lease | null {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // Look first: a waiter polls this, and a live holder's lock costs it one stat and one read, no writes.
  const before = inspectLock(file, opts);
  if (before.state === 'held') return null;
  if (before.state === 'stale') breakStaleLock(file, before);
  const owner: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    created: new Date().toISOString(),
    token: crypto.randomBytes(12).toString('hex'),
    procStart: processStartTime(process.pid),
    ...(opts.purpose ? { purpose: opts.purpose } : {}),
  };
  const temp = tempNameBeside(file);
  // Complete before it is linked (atomic visibility); not fsynced: after a power cut its holder is gone anyway.
  writeNewFileSync(temp, JSON.stringify(owner), file, false);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.linkSync(temp, file);
        const beat = startHeartbeat(file, owner, opts.heartbeatMs ?? Math.max(50, Math.floor(leaseMsOf(opts) / 6)));
        let released = false;
        return {
          file,
          owner,
          held: beat.held,
          release: () => {
            if (released) return;
            released = true;
            beat.stop();
            // Only our own lock: after a takeover the file is the successor's.
            try {
              if (parseOwner(fs.readFileSync(file, 'utf8'))?.token === owner.token) fs.rmSync(file, { force: true });
            } catch {
              // already gone
            }
          },
        };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw writeError(file, err);
      }
      const status = inspectLock(file, opts);
      if (status.state === 'held') return null;
      if (status.state === 'stale') breakStaleLock(file, status);
    }
    return null;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

export interface AcquireOptions extends LeaseOptions {
  /** Checked between tries: false stops waiting (e.g. the holder already produced what we need). */
  stillNeeded?: () => boolean;
  signal?: AbortSignal;
  /** Called once after `waitNoticeMs` (default 3 s) of waiting, and every `waitRepeatMs` (60 s) after that. */
  onWait?: (holder: LockStatus & { state: 'held' }, waitedMs: number) => void;
  waitNoticeMs?: number;
  waitRepeatMs?: number;
  pollMs?: number;
}

/** Waits for the lock (never past a dead holder's lease); null when `stillNeeded` said no or `signal` fired. */
export async function acquire(file: string, opts: AcquireOptions = {}): Promise<Lease | null> {
  const started = Date.now();
  let nextNotice = started + (opts.waitNoticeMs ?? 3_000);
  for (;;) {
    const lease = tryAcquire(file, opts);
    if (lease) return lease;
    if (opts.signal?.aborted) return null;
    if (opts.stillNeeded && !opts.stillNeeded()) return null;
    if (opts.onWait && Date.now() >= nextNotice) {
      const status = inspectLock(file, opts);
      if (status.state === 'held') opts.onWait(status, Date.now() - started);
      nextNotice = Date.now() + (opts.waitRepeatMs ?? 60_000);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 100));
  }
}

/** A sentence for a waiter: whose lock, since when, and what to do. */
export function describeHolder(file: string, holder: LockStatus & { state: 'held' }, opts: LeaseOptions = {}): string {
  const o = holder.owner;
  const lease = Math.round(leaseMsOf(opts) / 1000);
  return (
    `held by pid ${o.pid} on ${o.host}${o.purpose ? ` (${o.purpose})` : ''} since ${o.created || 'an unknown time'}, ` +
    `heartbeat ${Math.round(holder.heartbeatAgeMs / 1000)} s ago; flow takes it over ${lease} s after the holder's last heartbeat. ` +
    `If that process is gone for good, delete ${file}`
  );
}

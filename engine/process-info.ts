// Facts about local processes, for liveness checks on this host only (a lock or run of another host is judged
// by its lease heartbeat alone). A zombie (exited, not yet reaped by its parent) counts as dead, and a pid
// that was reused by a newer process is told apart by the process's start time (Linux /proc; elsewhere null).
import fs from 'node:fs';

/** Fields of /proc/<pid>/stat after the command (which may contain spaces and parentheses). */
function procStatFields(pid: number): string[] | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  return close < 0 ? null : text.slice(close + 2).split(' ');
}

/** The process's start time (clock ticks since boot, as text), or null where the platform cannot say. */
export function processStartTime(pid: number): string | null {
  // Field 22 of stat; after the command the fields start at field 3 (state).
  return procStatFields(pid)?.[19] ?? null;
}

/** Whether a process with this pid runs (a zombie or a pid we may not signal but that is gone is not alive). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = procStatFields(pid)?.[0];
  return state !== 'Z' && state !== 'X';
}

/**
 * Whether the process that wrote `startTime` for `pid` still runs: alive, and (where both are known) started
 * at the same moment, so a recycled pid is not taken for the original owner.
 */
export function isSameProcessAlive(pid: number, startTime: string | null | undefined): boolean {
  if (!isPidAlive(pid)) return false;
  if (startTime === null || startTime === undefined) return true;
  const now = processStartTime(pid);
  return now === null || now === startTime;
}

/** Whether any process of a process group is alive (zombies aside is not checkable per group: kill(0)). */
export function isGroupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 0) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Shell command stages (`run:` in a pipeline): references are substituted with absolute paths, the command
// runs through execa with a shell in the pipeline's base dir, its output is streamed with a `[stage]` prefix
// and logged, and every declared output must exist afterwards.
// No command outlives flow: each runs in its own process group, which a small reaper process (detached, so a
// SIGKILL of flow's group spares it) kills as soon as flow's end of a pipe closes, however flow died. And a
// command's group is recorded beside its key's lock, so a later run of the key first stops a survivor of an
// earlier process (the reaper itself killed too) instead of running the stage a second time beside it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { CommandPart } from './loader.js';
import { readJsonIfExists, writeJsonAtomic } from './fs-util.js';
import { isGroupAlive } from './process-info.js';

export interface CommandRun {
  stageName: string;
  parts: CommandPart[];
  baseDir: string;
  /** Absolute path of each upstream output / path input, by the ref's text form. */
  resolveRef(part: Exclude<CommandPart, string | { type: 'own-output' }>): string;
  /** Output name → absolute path in the temp outs folder. */
  outs: Record<string, string>;
  signal: AbortSignal;
  log: Logger;
  stderr: NodeJS.WritableStream;
  /** Where the running command's process group is recorded (beside the key's lock); removed when it ends. */
  recordFile?: string;
}

const FORCE_KILL_AFTER_MS = 10_000;

/** What recordFile holds. */
interface CommandRecord {
  pgid: number;
  host: string;
  stage: string;
  started: string;
  /** The flow process that started it. */
  flowPid: number;
}

// The reaper: reads "+<pgid>" / "-<pgid>" lines; when its stdin ends (flow exited or was killed) it sends
// SIGTERM to every group still listed, then SIGKILL to those still alive after a grace period, and exits.
const REAPER_SOURCE = `
const groups = new Set(); let buf = '';
const alive = (g) => { try { process.kill(-g, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const send = (sig) => { for (const g of groups) { try { process.kill(-g, sig); } catch {} } };
process.on('SIGINT', () => {}); process.on('SIGHUP', () => {});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { buf += c; let i; while ((i = buf.indexOf('\\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); const g = Number(l.slice(1)); if (l[0] === '+') groups.add(g); else groups.delete(g); } });
process.stdin.on('error', () => {});
process.stdin.on('close', () => {
  if (groups.size === 0) process.exit(0);
  send('SIGTERM');
  const t0 = Date.now();
  const poll = setInterval(() => {
    for (const g of [...groups]) if (!alive(g)) groups.delete(g);
    if (groups.size === 0) process.exit(0);
    if (Date.now() - t0 > ${FORCE_KILL_AFTER_MS}) { send('SIGKILL'); process.exit(0); }
  }, 50);
});
`;

let reaper: ChildProcess | null = null;

/** The reaper's stdin (started on first use, one per flow process), or null where it could not start. */
function reaperInput(): NodeJS.WritableStream | null {
  if (reaper === null) {
    reaper = spawn(process.execPath, ['-e', REAPER_SOURCE], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    reaper.on('error', () => undefined);
    reaper.stdin!.on('error', () => undefined);
    // Neither the reaper nor the pipe may keep flow alive: flow's exit is exactly what closes the pipe.
    reaper.unref();
    (reaper.stdin as unknown as { unref?: () => void }).unref?.();
  }
  return reaper.stdin;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A command of this key left running by an earlier flow process (killed before its reaper could act, or the
 * reaper killed too) is stopped and waited for before the stage runs again, so its side effects never happen
 * twice at once. Returns a line describing what was done, or null.
 */
async function stopSurvivor(recordFile: string, stageName: string): Promise<string | null> {
  let record: CommandRecord | undefined;
  try {
    record = readJsonIfExists<CommandRecord>(recordFile);
  } catch {
    record = undefined;
  }
  if (!record || typeof record.pgid !== 'number') return null;
  if (record.host !== os.hostname()) {
    return `warning: stage ${stageName}'s command from an earlier flow process on ${record.host} (process group ${record.pgid}) may still run there; it cannot be stopped from ${os.hostname()}`;
  }
  if (!isGroupAlive(record.pgid)) return null;
  signalGroup(record.pgid, 'SIGTERM');
  const t0 = Date.now();
  while (isGroupAlive(record.pgid) && Date.now() - t0 < FORCE_KILL_AFTER_MS) await sleep(50);
  if (isGroupAlive(record.pgid)) signalGroup(record.pgid, 'SIGKILL');
  while (isGroupAlive(record.pgid) && Date.now() - t0 < FORCE_KILL_AFTER_MS + 5_000) await sleep(50);
  return `stopped stage ${stageName}'s command left running by an earlier flow process (pid ${record.flowPid}, process group ${record.pgid}, started ${record.started}) before running it again`;
}

/** Process groups of running commands, so an immediate exit (second Ctrl+C) can stop them too. */
const liveGroups = new Set<number>();

function signalGroup(group: number | undefined, sig: NodeJS.Signals): void {
  if (group === undefined) return;
  try {
    process.kill(-group, sig);
  } catch {
    // already gone
  }
}

/** Sends SIGTERM to every running command's process group (used right before the process exits). */
export function stopAllCommands(): void {
  for (const group of liveGroups) signalGroup(group, 'SIGTERM');
}

/** Quotes a path for sh only when it needs it. */
function shellQuote(p: string): string {
  return /^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

export function substituteCommand(run: Pick<CommandRun, 'parts' | 'resolveRef' | 'outs' | 'stageName'>): string {
  return run.parts
    .map((part) => {
      if (typeof part === 'string') return part;
      if (part.type === 'own-output') {
        const p = run.outs[part.output];
        if (p === undefined) throw new Error(`stage ${run.stageName}: the command uses \${outs.${part.output}}, which is not a declared output`);
        return shellQuote(p);
      }
      return shellQuote(run.resolveRef(part));
    })
    .join('');
}

function pipeLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): Promise<void> {
  if (!stream) return Promise.resolve();
  return new Promise((resolve) => {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    stream.on('end', () => {
      if (pending.length > 0) onLine(pending);
      resolve();
    });
    stream.on('error', () => resolve());
  });
}

/** Runs the command; resolves `done` or `interrupted`, throws on failure (naming exit code or missing out). */
export async function runCommandStage(run: CommandRun): Promise<'done' | 'interrupted'> {
  for (const p of Object.values(run.outs)) fs.mkdirSync(path.dirname(p), { recursive: true });
  const command = substituteCommand(run);
  run.log.info({ command }, 'command');
  if (run.recordFile) {
    const stopped = await stopSurvivor(run.recordFile, run.stageName);
    if (stopped) {
      run.stderr.write(`[${run.stageName}] ${stopped}\n`);
      run.log.warn(stopped);
    }
  }
  const { execa } = await import('execa');
  // The reaper starts before the command, so it is up by the time flow could die.
  reaperInput();
  // Its own process group (detached), so stopping it stops everything the shell started (`a && b`, pipes),
  // not only the shell: otherwise an orphaned grandchild keeps the output pipes open and the stage waits.
  const child = execa(command, {
    shell: true,
    cwd: run.baseDir,
    stdin: 'ignore',
    buffer: false,
    reject: false,
    detached: true,
  });
  const group = child.pid;
  let forceKill: NodeJS.Timeout | undefined;
  const stop = (): void => {
    signalGroup(group, 'SIGTERM');
    forceKill = setTimeout(() => signalGroup(group, 'SIGKILL'), FORCE_KILL_AFTER_MS);
    forceKill.unref();
  };
  if (group !== undefined) {
    liveGroups.add(group);
    reaperInput()?.write(`+${group}\n`);
    if (run.recordFile) {
      const record: CommandRecord = { pgid: group, host: os.hostname(), stage: run.stageName, started: new Date().toISOString(), flowPid: process.pid };
      try {
        writeJsonAtomic(run.recordFile, record);
      } catch (err) {
        // Unrecorded, it could outlive us unnoticed (disk full): stop it and fail the stage.
        signalGroup(group, 'SIGKILL');
        liveGroups.delete(group);
        await child;
        throw err;
      }
    }
  }
  if (run.signal.aborted) stop();
  else run.signal.addEventListener('abort', stop, { once: true });
  const prefix = `[${run.stageName}] `;
  const streamed = Promise.all([
    pipeLines(child.stdout, (line) => {
      run.stderr.write(prefix + line + '\n');
      run.log.info({ stream: 'stdout' }, line);
    }),
    pipeLines(child.stderr, (line) => {
      run.stderr.write(prefix + line + '\n');
      run.log.info({ stream: 'stderr' }, line);
    }),
  ]);
  const result = await child;
  await streamed;
  run.signal.removeEventListener('abort', stop);
  if (forceKill) clearTimeout(forceKill);
  if (group !== undefined) {
    // The shell is gone; anything it left in the background dies with the stage, as on an interrupt.
    signalGroup(group, 'SIGKILL');
    liveGroups.delete(group);
    reaper?.stdin?.write(`-${group}\n`);
    if (run.recordFile) fs.rmSync(run.recordFile, { force: true });
  }
  if (run.signal.aborted && result.exitCode !== 0) return 'interrupted';
  if (result.failed) {
    const how = result.exitCode !== undefined ? `exit code ${result.exitCode}` : `signal ${result.signal ?? 'unknown'}`;
    throw new Error(`command failed with ${how}: ${command}`);
  }
  for (const [name, p] of Object.entries(run.outs)) {
    if (!fs.existsSync(p)) throw new Error(`the command finished but did not create its declared output ${name} (${p})`);
  }
  return 'done';
}

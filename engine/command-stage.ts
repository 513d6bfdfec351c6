// Shell command stages (`run:` in a pipeline): references are substituted with absolute paths, the command
// runs through execa with a shell in the pipeline's base dir, its output is streamed with a `[stage]` prefix
// and logged, and every declared output must exist afterwards.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CommandPart } from './loader.js';

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
}

const FORCE_KILL_AFTER_MS = 10_000;

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
  const { execa } = await import('execa');
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
  if (group !== undefined) liveGroups.add(group);
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
  if (group !== undefined) liveGroups.delete(group);
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

// Shared by the cache-integrity and liveness tests: the CLI with a hang guard, a small diamond of command
// stages with a folder output, and readers of run state and cache entries.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { spawnCli, type CliResult, type Project } from '../engine/helpers.js';

export interface GuardedResult extends CliResult {
  /** The command had to be killed: it hung. */
  hung: boolean;
}

/** Runs the CLI; SIGKILLs it after `limitMs` (a hang is a test failure, never a stuck suite). */
export async function runCliWithin(project: Project, args: string[], limitMs = 20_000, env: Record<string, string> = {}): Promise<GuardedResult> {
  const run = spawnCli(project, args, env);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    run.child.kill('SIGKILL');
  }, limitMs);
  const result = await run.done;
  clearTimeout(timer);
  return { ...result, hung };
}

/** a (a folder of 4 parts) → b, c → d; every command appends its name to side.txt (its side effect). */
export const DIAMOND = `name: diamond
params: { salt: 1 }
stages:
  a: { run: "mkdir -p \${outs.out} && for i in 1 2 3 4; do echo \${params.salt}-$i > \${outs.out}/part$i.txt; done && echo a >> side.txt", outs: { out: out/ } }
  b: { run: "cat \${stages.a.outs.out}/part1.txt \${stages.a.outs.out}/part3.txt > \${outs.o} && echo b >> side.txt", outs: { o: b.txt } }
  c: { run: "cat \${stages.a.outs.out}/part2.txt > \${outs.o} && echo c >> side.txt", outs: { o: c.txt } }
  d: { run: "cat \${stages.b.outs.o} \${stages.c.outs.o} > \${outs.o} && echo d >> side.txt", outs: { o: d.txt } }
`;

export interface StageStateView {
  status: string;
  cached: boolean;
  key: string;
  reason: string[];
  error: string | null;
}

export function runDirs(project: Project, pipeline: string): string[] {
  const dir = path.join(project.runsDir, pipeline);
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((id) => path.join(dir, id)) : [];
}

export function lastRunState(project: Project, pipeline: string): { runId: string; status: string; stages: Record<string, StageStateView> } {
  const dir = runDirs(project, pipeline).at(-1);
  if (!dir) throw new Error(`no run of ${pipeline}`);
  return JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
}

export function entryOuts(project: Project, key: string): string {
  return path.join(project.cacheDir, 'entries', key, 'outs');
}

export function sideEffects(project: Project): string[] {
  const file = path.join(project.dir, 'side.txt');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}

/** A zombie: `sh` backgrounds a child that exits at once, then becomes `sleep`, which never reaps it. */
export async function makeZombie(): Promise<{ pid: number; stop(): void }> {
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (c: Buffer) => resolve(Number(c.toString().trim()))));
  for (let i = 0; i < 200; i++) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return { pid, stop: () => parent.kill('SIGKILL') };
    await new Promise((r) => setTimeout(r, 10));
  }
  parent.kill('SIGKILL');
  throw new Error(`pid ${pid} did not become a zombie`);
}

/** Writes a lock file as an older or foreign holder would have left it, with its heartbeat `ageMs` old. */
export function plantLock(file: string, content: string, ageMs: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  const when = new Date(Date.now() - ageMs);
  fs.utimesSync(file, when, when);
}

export function lockContent(pid: number): string {
  return JSON.stringify({ pid, host: os.hostname(), created: new Date().toISOString() });
}

/** Mounts a tmpfs of `sizeMb` at a new folder; null (with the reason) where mounting is not permitted. */
export function mountTmpfs(sizeMb: number): { dir: string; unmount(): void } | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flow-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return { skip: `mount -t tmpfs is not permitted here: ${(r.stderr || r.error?.message || '').trim()}` };
  }
  return {
    dir,
    unmount: () => {
      spawnSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fills a filesystem until `leaveBytes` remain free (a file `filler` in `dir`). */
export function fillDisk(dir: string, leaveBytes: number): string {
  const filler = path.join(dir, 'filler');
  const st = fs.statfsSync(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  const size = Math.max(0, free - leaveBytes);
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 1);
  let written = 0;
  try {
    while (written < size) written += fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
  } catch {
    // full already
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

/** Every path under `dir` whose name marks an unfinished write (atomic-write temps, lock temps, copies). */
export function leftoverTemps(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (/\.tmp-|\.lock\.(new|stale)-/.test(e.name)) found.push(p);
      if (e.isDirectory() && !e.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return found;
}

// `flow run FILE --sweep k=a,b --sweep j=1..3`: the grid's runs, each an ordinary run folder, up to `jobs` at
// once, each in a child `flow` process of its own (TensorFlow.js state, signal handling and the process-wide
// backend never mix between runs). Upstream stages every combination shares are computed once: the runs look
// them up in the one cache, and its per-key lock makes the others wait and then take the entry
// ("computed by another flow process"). `flow resume SWEEP` starts what never started, resumes what stopped,
// and leaves finished runs alone.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StageCatalog } from '../catalog.js';
import { PipelineError, type Diagnostic } from '../pipeline/diagnostics.js';
import { OVERRIDE_FILE } from '../pipeline/source.js';
import { isPidAlive } from '../fs-util.js';
import { readRunState, statePath, type RunStatus } from '../run-folder.js';
import { installInterruptHandlers, INTERRUPT_EXIT_CODE } from '../signals.js';
import { parseSweepArg, parseSweeps, SWEEP_FILE, type SweepAxis } from './grammar.js';
import { createSweepDir, readManifest, writeManifest, type SweepManifest, type SweepMember } from './manifest.js';

export interface SweepOptions {
  catalog: StageCatalog;
  cacheDir: string;
  runsDir: string;
  /** Concurrent runs (default 1). */
  jobs?: number;
  /** Where the sweep's lines and its runs' status lines go (default process.stderr). */
  stderr?: NodeJS.WritableStream;
}

export interface SweepResult {
  sweepId: string;
  sweepDir: string;
  status: RunStatus;
  exitCode: number;
  manifest: SweepManifest;
  report: string | null;
}

/**
 * Diagnostics of a sweep run's --set list point back at the --sweep argument they came from: `axes[i]` is the
 * index of the --sweep argument whose value is the run's (sets.length + i + 1)-th override.
 */
function toSweepDiagnostics(err: PipelineError, setCount: number, sweeps: readonly string[], axes: readonly number[]): Diagnostic[] {
  return err.diagnostics.map((d) => {
    if (d.file !== OVERRIDE_FILE || d.line <= setCount) return d;
    const axis = axes[d.line - setCount - 1] ?? d.line - setCount - 1;
    return { ...d, file: SWEEP_FILE, line: axis + 1, message: d.message.replace(/^--set [^:]*:/, `--sweep ${sweeps[axis]}:`) };
  });
}

/** The CLI entry beside this engine (the compiled one, or the TypeScript source when run through tsx). */
function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), '..', here.endsWith('.ts') ? 'cli-entry.ts' : 'cli-entry.js');
}

/**
 * Loads every combination's pipeline before anything runs, so a bad value fails the sweep at once; returns the
 * pipeline's name. `axes` maps each member's overrides to their --sweep arguments (default: in order).
 */
async function checkCombinations(file: string, baseDir: string, catalog: StageCatalog, sets: string[], sweeps: string[], members: { overrides: string[] }[], axes: number[] = sweeps.map((_, i) => i)): Promise<{ name: string; problems: Diagnostic[] }> {
  const { loadPipeline } = await import('../loader.js');
  let name = '';
  const problems: Diagnostic[] = [];
  for (const m of members) {
    try {
      name = loadPipeline(file, { baseDir, overrides: [...sets, ...m.overrides], catalog }).name;
    } catch (err) {
      if (!(err instanceof PipelineError)) throw err;
      problems.push(...toSweepDiagnostics(err, sets.length, sweeps, axes));
    }
  }
  return { name, problems };
}

/**
 * Parses the --sweep arguments and loads every combination; all problems at once (a bad range and an unknown key
 * in another --sweep are both reported: when the grammar fails, the well-formed arguments' first values are
 * still loaded to check their keys).
 */
async function planSweep(file: string, baseDir: string, catalog: StageCatalog, sets: string[], sweeps: string[]): Promise<{ name: string; plan: ReturnType<typeof parseSweeps> }> {
  let plan: ReturnType<typeof parseSweeps> | undefined;
  let grammar: Diagnostic[] = [];
  try {
    plan = parseSweeps(sweeps, sets);
  } catch (err) {
    if (!(err instanceof PipelineError)) throw err;
    grammar = err.diagnostics;
  }
  if (plan) {
    const { name, problems } = await checkCombinations(file, baseDir, catalog, sets, sweeps, plan.combinations);
    if (problems.length > 0) throw new PipelineError(problems);
    return { name, plan };
  }
  const wellFormed = sweeps.map((arg, i) => ({ i, parsed: parseSweepArg(arg, i) })).filter((x) => 'axis' in x.parsed);
  const firsts = wellFormed.map(({ parsed }) => {
    const axis = (parsed as { axis: SweepAxis }).axis;
    return `${axis.add ? '+' : ''}${axis.key}=${axis.values[0]!.text}`;
  });
  const { problems } = await checkCombinations(file, baseDir, catalog, sets, sweeps, [{ overrides: firsts }], wellFormed.map((x) => x.i));
  throw new PipelineError([...grammar, ...problems]);
}

/** Starts a sweep: checks every combination, writes its folder and manifest, then runs the grid. */
export async function runSweep(
  file: string,
  baseDir: string,
  sets: string[],
  sweeps: string[],
  opts: SweepOptions,
): Promise<SweepResult> {
  const absFile = path.resolve(file);
  const { name: pipeline, plan } = await planSweep(absFile, baseDir, opts.catalog, sets, sweeps);
  const { axes, combinations } = plan;
  const { sweepId, sweepDir } = createSweepDir(opts.runsDir, pipeline);
  const now = new Date().toISOString();
  const manifest: SweepManifest = {
    format: 1,
    sweepId,
    pipeline,
    file: absFile,
    baseDir: path.resolve(baseDir),
    cacheDir: path.resolve(opts.cacheDir),
    sets,
    sweeps,
    keys: axes.map((a) => a.key),
    jobs: Math.max(1, opts.jobs ?? 1),
    created: now,
    updated: now,
    status: 'running',
    pid: process.pid,
    host: os.hostname(),
    members: combinations.map((c) => ({ index: c.index, overrides: c.overrides, params: c.params, runId: null, status: null })),
  };
  writeManifest(sweepDir, manifest);
  const out = opts.stderr ?? process.stderr;
  out.write(`sweep ${sweepId}: ${combinations.length} runs (${axes.map((a) => `${a.key} × ${a.values.length}`).join(', ')}), up to ${manifest.jobs} at once\n`);
  return execute(sweepDir, manifest, opts);
}

/** Continues a sweep: runs never started start, stopped ones resume, finished ones stay as they are. */
export async function resumeSweep(sweepDir: string, opts: Omit<SweepOptions, 'cacheDir'> & { cacheDir?: string }): Promise<SweepResult> {
  const manifest = readManifest(sweepDir);
  if (manifest.status === 'running' && manifest.host === os.hostname() && manifest.pid !== process.pid && isPidAlive(manifest.pid)) {
    throw new Error(`sweep ${manifest.sweepId} is still running (pid ${manifest.pid} on ${manifest.host})`);
  }
  for (const m of manifest.members) if (m.runId !== null) m.status = readRunState(runDirOf(opts.runsDir, manifest, m.runId))?.status ?? m.status;
  const todo = manifest.members.filter((m) => m.status !== 'done').length;
  const out = opts.stderr ?? process.stderr;
  if (todo === 0) {
    manifest.status = 'done';
    writeManifest(sweepDir, manifest);
    out.write(`sweep ${manifest.sweepId} is already done; nothing to resume\n`);
  } else {
    out.write(`resuming sweep ${manifest.sweepId} (${manifest.pipeline}): ${todo} of ${manifest.members.length} runs to finish\n`);
  }
  const { problems } = await checkCombinations(manifest.file, manifest.baseDir, opts.catalog, manifest.sets, manifest.sweeps, manifest.members);
  if (problems.length > 0) throw new PipelineError(problems);
  manifest.jobs = Math.max(1, opts.jobs ?? manifest.jobs);
  manifest.status = 'running';
  manifest.pid = process.pid;
  manifest.host = os.hostname();
  return execute(sweepDir, manifest, { ...opts, cacheDir: opts.cacheDir ?? manifest.cacheDir });
}

function runDirOf(runsDir: string, manifest: SweepManifest, runId: string): string {
  return path.join(runsDir, manifest.pipeline, runId);
}

/** `[2/4 train.lr=3e-4 train.loss=bce]`: which run a line belongs to. */
function labelOf(m: SweepMember, total: number): string {
  return `[${m.index + 1}/${total} ${m.overrides.join(' ')}]`;
}

/** The run folder a child `flow run` created: the one whose state.json names the child's pid. */
function findChildRun(runsDir: string, pipeline: string, pid: number, since: number): string | null {
  const dir = path.join(runsDir, pipeline);
  let ids: string[];
  try {
    ids = fs.readdirSync(dir);
  } catch {
    return null;
  }
  // Run ids start with their UTC start second; only those from the child's spawn on can be its.
  const stamp = new Date(since - 1000).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  for (const id of ids) {
    if (id < stamp || !fs.existsSync(statePath(path.join(dir, id)))) continue;
    try {
      const state = JSON.parse(fs.readFileSync(statePath(path.join(dir, id)), 'utf8')) as { pid?: unknown };
      if (state.pid === pid) return id;
    } catch {
      // being written: the next poll reads it
    }
  }
  return null;
}

async function execute(sweepDir: string, manifest: SweepManifest, opts: SweepOptions): Promise<SweepResult> {
  const out = opts.stderr ?? process.stderr;
  const total = manifest.members.length;
  const controller = new AbortController();
  const children = new Map<number, ChildProcess>();
  const uninstall = installInterruptHandlers(controller, {
    // Children run in process groups of their own (a terminal's Ctrl+C reaches only this process), so each
    // gets exactly the signals this process gets: one to checkpoint and stop, a second to exit at once.
    onFirst: (sig) => {
      out.write(`stopping the sweep: ${children.size} running run${children.size === 1 ? '' : 's'} checkpoint and stop; no new runs start (${sig} again to exit now)\n`);
      for (const child of children.values()) child.kill(sig);
    },
    onSecond: (sig) => {
      for (const child of children.values()) child.kill(sig);
      manifest.status = 'interrupted';
      writeManifest(sweepDir, manifest);
    },
  });
  const pending = manifest.members.filter((m) => m.status !== 'done');
  const runOne = (m: SweepMember): Promise<void> =>
    new Promise((resolve) => {
      const args = m.runId !== null
        ? ['resume', m.runId]
        : ['run', manifest.file, ...[...manifest.sets, ...m.overrides].flatMap((o) => ['--set', o])];
      const started = Date.now();
      const child = spawn(process.execPath, [...process.execArgv, cliEntry(), ...args, '--cache', opts.cacheDir, '--runs', opts.runsDir], {
        cwd: manifest.baseDir,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.set(m.index, child);
      const label = labelOf(m, total);
      let tail = '';
      let partial = '';
      child.stderr!.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) out.write(`${label} ${line}\n`);
        tail = (tail + chunk.toString()).slice(-4000);
      });
      const discover = (): void => {
        if (m.runId !== null && m.status === 'running') return;
        const id = m.runId ?? findChildRun(opts.runsDir, manifest.pipeline, child.pid ?? -1, started);
        if (id !== null) {
          m.runId = id;
          m.status = 'running';
          writeManifest(sweepDir, manifest);
        }
      };
      const poll = setInterval(discover, 100);
      child.on('close', (code) => {
        clearInterval(poll);
        if (partial) out.write(`${label} ${partial}\n`);
        children.delete(m.index);
        discover();
        const state = m.runId !== null ? readRunState(runDirOf(opts.runsDir, manifest, m.runId)) : undefined;
        m.status = state?.status ?? (code === INTERRUPT_EXIT_CODE ? 'interrupted' : 'failed');
        if (m.runId === null) out.write(`${label} flow exited with code ${code} before its run started:\n${tail}\n`);
        writeManifest(sweepDir, manifest);
        resolve();
      });
    });
  try {
    const jobs = Math.max(1, manifest.jobs);
    const queue = [...pending];
    const workers = Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      for (let m = queue.shift(); m !== undefined && !controller.signal.aborted; m = queue.shift()) await runOne(m);
    });
    await Promise.all(workers);
  } finally {
    uninstall();
  }
  const statuses = manifest.members.map((m) => m.status);
  manifest.status = statuses.every((s) => s === 'done') ? 'done' : statuses.includes('failed') ? 'failed' : 'interrupted';
  writeManifest(sweepDir, manifest);
  let report: string | null = null;
  try {
    const { writeSweepReport } = await import('./report.js');
    report = await writeSweepReport(sweepDir, opts.runsDir);
  } catch (err) {
    out.write(`flow: warning: could not write the sweep report: ${(err as Error).message}\n`);
  }
  const count = (s: RunStatus): number => statuses.filter((x) => x === s).length;
  const parts = [`${count('done')} done`, ...(count('failed') ? [`${count('failed')} failed`] : []), ...(statuses.length - count('done') - count('failed') > 0 ? [`${statuses.length - count('done') - count('failed')} not finished`] : [])];
  out.write(`sweep ${manifest.sweepId}: ${manifest.status} (${parts.join(', ')})${report ? `; report ${report}` : ''}\n`);
  if (manifest.status !== 'done') out.write(`continue it with: flow resume ${manifest.sweepId}\n`);
  const exitCode = manifest.status === 'done' ? 0 : manifest.status === 'failed' ? 1 : INTERRUPT_EXIT_CODE;
  return { sweepId: manifest.sweepId, sweepDir, status: manifest.status, exitCode, manifest, report };
}

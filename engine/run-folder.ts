// Run folders (DESIGN.md): runs/<pipeline>/<run-id>/ with config.yaml, overrides.txt, env.json, state.json,
// log.ndjson, stages/<stage> → the cache entry's outs/, metrics.json. state.json is rewritten atomically
// after every change, so a crash leaves the last consistent state.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { JsonObject } from './stage.js';
import { isPidAlive, readJsonIfExists, writeFileAtomic, writeJsonAtomic } from './fs-util.js';
import { UsageError } from './usage-error.js';
import { inspectLock } from './lease-lock.js';

export type RunStatus = 'running' | 'done' | 'failed' | 'interrupted';
export type StageStatus = 'pending' | 'running' | 'done' | 'failed' | 'interrupted';

export interface StageState {
  status: StageStatus;
  cached: boolean;
  key: string | null;
  /** Why the stage was not a cache hit (one line per changed component). */
  reason: string[];
  started: string | null;
  ended: string | null;
  durationMs: number | null;
  error: string | null;
  resumedFromCheckpoint: boolean;
  /** The summary the stage returned, if any. */
  summary?: JsonObject;
}

export interface RunState {
  runId: string;
  pipeline: string;
  /** Absolute path of the pipeline file and the base dir, to reload it on `flow resume`. */
  file: string;
  baseDir: string;
  overrides: string[];
  cacheDir: string;
  status: RunStatus;
  pid: number;
  host: string;
  started: string;
  ended: string | null;
  order: string[];
  stages: Record<string, StageState>;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `YYYYMMDD-HHMMSS-xxxx` (UTC): sorts by time; the random part keeps same-second runs apart. */
export function newRunId(now = new Date()): string {
  const stamp = `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}-${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
  const bytes = crypto.randomBytes(4);
  let suffix = '';
  for (const b of bytes) suffix += BASE32[b % 32];
  return `${stamp}-${suffix}`;
}

/** Creates runs/<pipeline>/<id> with an exclusive mkdir (retrying on the rare same-id collision). */
export function createRunDir(runsDir: string, pipeline: string): { runId: string; runDir: string } {
  const parent = path.join(runsDir, pipeline);
  fs.mkdirSync(parent, { recursive: true });
  for (let attempt = 0; attempt < 100; attempt++) {
    const runId = newRunId();
    const runDir = path.join(parent, runId);
    try {
      fs.mkdirSync(runDir);
      return { runId, runDir };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`could not create a unique run folder under ${parent}`);
}

export function newStageState(): StageState {
  return { status: 'pending', cached: false, key: null, reason: [], started: null, ended: null, durationMs: null, error: null, resumedFromCheckpoint: false };
}

export function statePath(runDir: string): string {
  return path.join(runDir, 'state.json');
}

/** The lease lock a running flow process holds on its run folder (engine/lease-lock.ts). */
export function runLockPath(runDir: string): string {
  return path.join(runDir, 'run.lock');
}

/**
 * Whether the process of a run that says `running` is still at it: its lease on the run folder is held (any
 * host: the heartbeat decides), or, for run folders of flow versions without a lease, its pid lives here.
 */
function runIsLive(runDir: string, state: RunState): boolean {
  const lock = inspectLock(runLockPath(runDir));
  if (lock.state === 'held') return true;
  if (lock.state === 'stale') return false;
  return state.host !== os.hostname() || (isPidAlive(state.pid) && state.pid !== process.pid);
}

/**
 * Reads a run's state; a run that says `running` but whose process is gone (SIGKILL, power cut, a zombie) is
 * reported as interrupted, and so are its running stages.
 */
export function readRunState(runDir: string): RunState | undefined {
  const state = readJsonIfExists<RunState>(statePath(runDir));
  if (!state) return undefined;
  if (state.status === 'running' && !runIsLive(runDir, state)) {
    state.status = 'interrupted';
    for (const s of Object.values(state.stages)) if (s.status === 'running') s.status = 'interrupted';
  }
  return state;
}

/**
 * Owns state.json for one run. Status changes of running stages are written at once (`writeNow`); cache
 * hits call `changed()`, which coalesces writes to one per 200 ms so a 1,000-stage cached run stays fast.
 */
export class StateWriter {
  private timer: NodeJS.Timeout | null = null;
  /** `onError` hears a failed coalesced write (disk full), which happens in a timer where nobody could catch it. */
  constructor(readonly runDir: string, readonly state: RunState, private readonly onError: (err: Error) => void = () => undefined) {}

  changed(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      try {
        this.writeNow();
      } catch (err) {
        this.onError(err as Error);
      }
    }, 200);
  }

  writeNow(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    writeJsonAtomic(statePath(this.runDir), this.state);
  }
}

export function writeRunSnapshot(runDir: string, configYaml: string, overrides: string[]): void {
  writeFileAtomic(path.join(runDir, 'config.yaml'), configYaml);
  writeFileAtomic(path.join(runDir, 'overrides.txt'), overrides.map((o) => o + '\n').join(''));
}

function packageVersion(repoRoot: string, name: string): string | null {
  const pkg = readJsonIfExists<{ version?: string }>(path.join(repoRoot, 'node_modules', name, 'package.json'));
  return pkg?.version ?? null;
}

/** The baseDir repo's commit and dirty flag (null when it is not a git checkout or git is missing). */
export async function gitFacts(dir: string): Promise<{ commit: string | null; dirty: boolean | null }> {
  const { execFile } = await import('node:child_process');
  const git = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => execFile('git', args, { cwd: dir, timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
  try {
    // Both at once: this runs beside the first stages instead of delaying them.
    const [commit, status] = await Promise.all([git(['rev-parse', 'HEAD']), git(['status', '--porcelain', '--untracked-files=no'])]);
    return { commit: commit.trim(), dirty: status.trim().length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** env.json: what the run ran on (node, flow, packages, OS, host, git state, seed) + stage-recorded facts. */
export function collectEnv(flowRoot: string, params: JsonObject): JsonObject {
  const flowPkg = readJsonIfExists<{ version?: string; dependencies?: Record<string, string> }>(path.join(flowRoot, 'package.json'));
  const packages: JsonObject = {};
  for (const name of Object.keys(flowPkg?.dependencies ?? {})) packages[name] = packageVersion(flowRoot, name);
  const train = params.train;
  const seed = params.seed ?? (typeof train === 'object' && train !== null && !Array.isArray(train) ? (train.seed ?? null) : null);
  return {
    node: process.version,
    flow: flowPkg?.version ?? null,
    packages,
    os: { platform: os.platform(), release: os.release(), arch: os.arch() },
    cpus: os.cpus().length,
    host: os.hostname(),
    git: { commit: null, dirty: null }, // filled in by gitFacts() while the run starts
    seed,
    stages: {},
  };
}

/** Every runs/<pipeline>/<id> name (of one pipeline or of all), whether or not it holds a run. */
function runFolderCandidates(runsDir: string, pipeline?: string): { pipeline: string; runId: string; runDir: string }[] {
  const result: { pipeline: string; runId: string; runDir: string }[] = [];
  let pipelines: string[];
  try {
    pipelines = pipeline ? [pipeline] : fs.readdirSync(runsDir);
  } catch {
    return [];
  }
  for (const p of pipelines) {
    let ids: string[];
    try {
      ids = fs.readdirSync(path.join(runsDir, p));
    } catch {
      continue;
    }
    for (const id of ids) result.push({ pipeline: p, runId: id, runDir: path.join(runsDir, p, id) });
  }
  return result;
}

/** Lists run folders (absolute paths) of one pipeline or of all, sorted by run id (= by start time). */
export function listRuns(runsDir: string, pipeline?: string): { pipeline: string; runId: string; runDir: string }[] {
  const result = runFolderCandidates(runsDir, pipeline).filter((r) => fs.existsSync(statePath(r.runDir)));
  // Ids order runs by second; within one second the random suffix does not, so ties go by state.started.
  const startedOf = new Map<string, string>();
  const started = (r: { runDir: string }): string => {
    if (!startedOf.has(r.runDir)) {
      let value = '';
      try {
        value = readJsonIfExists<RunState>(statePath(r.runDir))?.started ?? '';
      } catch {
        // unreadable state.json: listed (and marked) by its reader; sorted by its id alone
      }
      startedOf.set(r.runDir, value);
    }
    return startedOf.get(r.runDir)!;
  };
  const second = (id: string): string => id.slice(0, 15);
  result.sort((a, b) => {
    const sa = second(a.runId);
    const sb = second(b.runId);
    if (sa !== sb) return sa < sb ? -1 : 1;
    const ta = started(a);
    const tb = started(b);
    return ta < tb ? -1 : ta > tb ? 1 : a.runId < b.runId ? -1 : 1;
  });
  return result;
}

/** RUN as users type it: a run id, a unique id prefix, a path to a run folder, or `latest`. */
export function resolveRun(runsDir: string, spec: string | undefined): string {
  const all = listRuns(runsDir);
  if (spec === undefined || spec === 'latest') {
    const last = all.at(-1);
    if (!last) throw new UsageError(`no runs under ${runsDir}`);
    return last.runDir;
  }
  if (fs.existsSync(statePath(spec))) return path.resolve(spec);
  const matches = all.filter((r) => r.runId.startsWith(spec));
  if (matches.length === 1) return matches[0]!.runDir;
  if (matches.length === 0) throw new UsageError(`no run matches "${spec}" under ${runsDir} (try \`flow runs\`)`);
  throw new UsageError(`"${spec}" matches ${matches.length} runs (${matches.slice(0, 4).map((m) => m.runId).join(', ')}…); give more of the id`);
}

export interface StageLinkProblem {
  stage: string;
  link: string;
  /** The entry outs/ folder the link should point to. */
  target: string;
  /** `missing` (link deleted), `broken` (points elsewhere or nowhere), `entry-gone` (the entry itself is missing). */
  problem: 'missing' | 'broken' | 'entry-gone';
}

/** The `stages/<name>` links of a run's done stages that are deleted or wrong (the run folder's view of its results). */
export function checkStageLinks(runDir: string, state: RunState): StageLinkProblem[] {
  const problems: StageLinkProblem[] = [];
  for (const name of state.order) {
    const s = state.stages[name];
    if (!s || s.status !== 'done' || !s.key) continue;
    const link = path.join(runDir, 'stages', name);
    const entryDir = path.join(state.cacheDir, 'entries', s.key);
    const target = path.join(entryDir, 'outs');
    if (!fs.existsSync(path.join(entryDir, 'entry.json'))) {
      problems.push({ stage: name, link, target, problem: 'entry-gone' });
      continue;
    }
    let current: string | null = null;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = null;
    }
    if (current === null) problems.push({ stage: name, link, target, problem: fs.lstatSync(link, { throwIfNoEntry: false }) ? 'broken' : 'missing' });
    else if (path.resolve(path.dirname(link), current) !== target) problems.push({ stage: name, link, target, problem: 'broken' });
  }
  return problems;
}

/** Points `stages/<name>` at a cache entry's outs/ (replacing whatever is there). */
export function linkStageOutputs(runDir: string, stage: string, target: string): void {
  const link = path.join(runDir, 'stages', stage);
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.rmSync(link, { force: true, recursive: true });
  fs.symlinkSync(target, link, 'dir');
}

/** Restores the links that can be restored (their entry exists); returns one line per problem found. */
export function repairStageLinks(runDir: string, state: RunState): { lines: string[]; unrecoverable: StageLinkProblem[] } {
  const lines: string[] = [];
  const unrecoverable: StageLinkProblem[] = [];
  for (const p of checkStageLinks(runDir, state)) {
    if (p.problem === 'entry-gone') {
      unrecoverable.push(p);
      lines.push(`stages/${p.stage}: its cache entry is gone (deleted by gc or found damaged); \`flow resume ${state.runId}\` recomputes it`);
      continue;
    }
    try {
      linkStageOutputs(runDir, p.stage, p.target);
      lines.push(`stages/${p.stage}: the link was ${p.problem === 'missing' ? 'deleted' : 'broken'}; restored it (→ ${p.target})`);
    } catch (err) {
      lines.push(`stages/${p.stage}: the link is ${p.problem} and could not be restored: ${(err as Error).message}`);
    }
  }
  return { lines, unrecoverable };
}

/** A run folder younger than this may be one whose process is between its mkdir and its lock. */
const STARTING_RUN_GRACE_MS = 10_000;

/**
 * Run folders without state.json whose run lock is not held: a run killed between creating its folder and
 * writing its first state (never listed, never resumable, only clutter). Of one pipeline, or of all.
 */
export function abandonedRunDirs(runsDir: string, pipeline?: string): string[] {
  return runFolderCandidates(runsDir, pipeline)
    .map((r) => r.runDir)
    .filter((runDir) => {
      if (fs.existsSync(statePath(runDir))) return false;
      const st = fs.statSync(runDir, { throwIfNoEntry: false });
      if (!st?.isDirectory()) return false;
      // Its lock decides; a folder without one may be a run between its mkdir and its lock (a moment).
      const lock = inspectLock(runLockPath(runDir)).state;
      return lock === 'stale' || (lock === 'free' && Date.now() - st.mtimeMs > STARTING_RUN_GRACE_MS);
    });
}

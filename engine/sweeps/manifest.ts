// A sweep's folder: runs/<pipeline>/sweeps/<sweep-id>/ with sweep.json (what the sweep is and which run folder
// each combination got) and report.html. Each combination is an ordinary run folder beside the others in
// runs/<pipeline>/, so `flow show`, `flow diff` and `flow resume RUN` work on it as on any run; sweep.json is
// what `flow resume SWEEP` and `flow runs` read to group them.
import fs from 'node:fs';
import path from 'node:path';
import type { JsonValue } from '../stage.js';
import { writeJsonAtomic } from '../fs-util.js';
import { newRunId, type RunStatus } from '../run-folder.js';

export const SWEEPS_FOLDER = 'sweeps';
export const SWEEP_ID_PREFIX = 'sweep-';

export interface SweepMember {
  index: number;
  /** This combination's `key=value` overrides (after the sweep's own --set ones). */
  overrides: string[];
  params: Record<string, JsonValue>;
  /** Its run folder's id, once its run has started (null: not started yet). */
  runId: string | null;
  /** The run's last known status (null: not started). */
  status: RunStatus | null;
}

export interface SweepManifest {
  format: 1;
  sweepId: string;
  pipeline: string;
  /** Absolute pipeline file and base dir, to load it again on `flow resume SWEEP`. */
  file: string;
  baseDir: string;
  cacheDir: string;
  /** The --set overrides shared by every run, and the --sweep arguments as typed. */
  sets: string[];
  sweeps: string[];
  /** Swept keys in axis order. */
  keys: string[];
  /** Concurrent runs (--jobs). */
  jobs: number;
  created: string;
  updated: string;
  status: RunStatus;
  /** The flow process driving the sweep (a second `flow resume SWEEP` refuses while it lives). */
  pid: number;
  host: string;
  members: SweepMember[];
}

export function sweepsDir(runsDir: string, pipeline: string): string {
  return path.join(runsDir, pipeline, SWEEPS_FOLDER);
}

export function manifestPath(sweepDir: string): string {
  return path.join(sweepDir, 'sweep.json');
}

/** Creates runs/<pipeline>/sweeps/<id> with an exclusive mkdir. */
export function createSweepDir(runsDir: string, pipeline: string): { sweepId: string; sweepDir: string } {
  const parent = sweepsDir(runsDir, pipeline);
  fs.mkdirSync(parent, { recursive: true });
  for (let attempt = 0; attempt < 100; attempt++) {
    const sweepId = SWEEP_ID_PREFIX + newRunId();
    const sweepDir = path.join(parent, sweepId);
    try {
      fs.mkdirSync(sweepDir);
      return { sweepId, sweepDir };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`could not create a unique sweep folder under ${parent}`);
}

export function writeManifest(sweepDir: string, manifest: SweepManifest): void {
  manifest.updated = new Date().toISOString();
  writeJsonAtomic(manifestPath(sweepDir), manifest);
}

const STATUSES: readonly string[] = ['running', 'done', 'failed', 'interrupted'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Reads and checks sweep.json; a damaged one is an error naming the file and the field. */
export function readManifest(sweepDir: string): SweepManifest {
  const file = manifestPath(sweepDir);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: cannot read the sweep manifest (${(err as Error).message})`);
  }
  const bad = (field: string): never => {
    throw new Error(`${file}: field ${field} is missing or has the wrong type; the sweep manifest is damaged`);
  };
  if (!isRecord(raw) || raw.format !== 1) return bad('format (1)');
  for (const f of ['sweepId', 'pipeline', 'file', 'baseDir', 'cacheDir', 'created', 'updated'] as const) if (typeof raw[f] !== 'string') bad(f);
  for (const f of ['sets', 'sweeps', 'keys'] as const) if (!isStringList(raw[f])) bad(f);
  if (typeof raw.pid !== 'number') bad('pid');
  if (typeof raw.host !== 'string') bad('host');
  if (typeof raw.jobs !== 'number' || !Number.isInteger(raw.jobs) || raw.jobs < 1) bad('jobs');
  if (typeof raw.status !== 'string' || !STATUSES.includes(raw.status)) bad('status');
  if (!Array.isArray(raw.members)) bad('members');
  const members = (raw.members as unknown[]).map((m, i): SweepMember => {
    if (!isRecord(m) || typeof m.index !== 'number' || !isStringList(m.overrides) || !isRecord(m.params)) return bad(`members[${i}]`);
    if (!(m.runId === null || typeof m.runId === 'string')) bad(`members[${i}].runId`);
    if (!(m.status === null || (typeof m.status === 'string' && STATUSES.includes(m.status)))) bad(`members[${i}].status`);
    return { index: m.index, overrides: m.overrides, params: m.params as Record<string, JsonValue>, runId: m.runId as string | null, status: m.status as RunStatus | null };
  });
  return {
    format: 1,
    sweepId: raw.sweepId as string,
    pipeline: raw.pipeline as string,
    file: raw.file as string,
    baseDir: raw.baseDir as string,
    cacheDir: raw.cacheDir as string,
    sets: raw.sets as string[],
    sweeps: raw.sweeps as string[],
    keys: raw.keys as string[],
    jobs: raw.jobs as number,
    created: raw.created as string,
    updated: raw.updated as string,
    status: raw.status as RunStatus,
    pid: raw.pid as number,
    host: raw.host as string,
    members,
  };
}

/** A folder's entries, or none when it does not exist (or cannot be read). */
function entriesOf(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Every sweep folder under runsDir (of one pipeline or all), oldest first. */
export function listSweeps(runsDir: string, pipeline?: string): { pipeline: string; sweepId: string; sweepDir: string }[] {
  const out: { pipeline: string; sweepId: string; sweepDir: string }[] = [];
  for (const p of pipeline ? [pipeline] : entriesOf(runsDir)) {
    for (const id of entriesOf(sweepsDir(runsDir, p))) {
      const sweepDir = path.join(sweepsDir(runsDir, p), id);
      if (id.startsWith(SWEEP_ID_PREFIX) && fs.existsSync(manifestPath(sweepDir))) out.push({ pipeline: p, sweepId: id, sweepDir });
    }
  }
  // Ids start with their UTC creation time.
  return out.sort((a, b) => (a.sweepId < b.sweepId ? -1 : 1));
}

/** A sweep as users type it: its id, a unique prefix of one (`sweep-2026…`), or a path to its folder; else null. */
export function findSweep(runsDir: string, spec: string | undefined): string | null {
  if (spec === undefined) return null;
  if (fs.existsSync(manifestPath(spec))) return path.resolve(spec);
  if (!spec.startsWith(SWEEP_ID_PREFIX)) return null;
  const matches = listSweeps(runsDir).filter((s) => s.sweepId.startsWith(spec));
  if (matches.length === 1) return matches[0]!.sweepDir;
  if (matches.length === 0) throw new Error(`no sweep matches "${spec}" under ${runsDir} (try \`flow runs\`)`);
  throw new Error(`"${spec}" matches ${matches.length} sweeps (${matches.slice(0, 4).map((m) => m.sweepId).join(', ')}…); give more of the id`);
}

// Shared by the end-to-end tests (and bench/pipelines.ts): the real `flow` CLI as a child process, run from the
// project root on the real pipelines, with its cache and runs folders in a temp folder; readers for what a run
// leaves behind (state.json, metrics.json, env.json).
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeTempDir, repoRoot } from '../helpers/paths.js';

export const pipelinesDir = path.join(repoRoot, 'pipelines');
export const carvanaPipeline = path.join(pipelinesDir, 'carvana.yaml');
export const bratsPipeline = path.join(pipelinesDir, 'brats.yaml');
export const brats3dPipeline = path.join(pipelinesDir, 'brats-3d.yaml');

/** Overrides that keep a whole-pipeline test run to seconds: tiny images, a tiny U-Net, two epochs. */
export const SMALL_TRAINING = ['train.epochs=2', 'train.input_size=[32,32]', 'train.filters=4'];

/** `--set k=v` for each override. */
export function setArgs(overrides: readonly string[]): string[] {
  return overrides.flatMap((o) => ['--set', o]);
}

/** The CLI: the compiled entry when the tests run from dist/, else the TypeScript source through tsx. */
export function cliArgv(): string[] {
  if (fileURLToPath(import.meta.url).endsWith('.js')) return [path.join(repoRoot, 'dist', 'engine', 'cli-entry.js')];
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsx, path.join(repoRoot, 'engine', 'cli-entry.ts')];
}

/** A cache folder and a runs folder of one's own (FLOW_CACHE / FLOW_RUNS). */
export interface FlowHome {
  dir: string;
  cacheDir: string;
  runsDir: string;
  env: Record<string, string>;
}

export function makeFlowHome(prefix = 'flow-e2e-'): FlowHome {
  const dir = makeTempDir(prefix);
  const cacheDir = path.join(dir, 'cache');
  const runsDir = path.join(dir, 'runs');
  return { dir, cacheDir, runsDir, env: { FLOW_CACHE: cacheDir, FLOW_RUNS: runsDir } };
}

export interface FlowResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

export interface FlowProcess {
  child: ChildProcess;
  done: Promise<FlowResult>;
  stderrSoFar(): string;
}

/** Starts `flow <args>` in the project root (where the pipelines' relative data paths resolve). */
export function spawnFlow(home: FlowHome, args: readonly string[], options: { env?: Record<string, string> } = {}): FlowProcess {
  const started = Date.now();
  const child = spawn(process.execPath, [...cliArgv(), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...home.env, FLOW_STAGE_REGISTRY: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<FlowResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, wallMs: Date.now() - started }));
  });
  return { child, done, stderrSoFar: () => stderr };
}

export function flow(home: FlowHome, args: readonly string[]): Promise<FlowResult> {
  return spawnFlow(home, args).done;
}

export interface StageStateJson {
  status: string;
  cached: boolean;
  key: string | null;
  reason: string[];
  durationMs: number | null;
  error: string | null;
  resumedFromCheckpoint: boolean;
}

export interface RunStateJson {
  runId: string;
  pipeline: string;
  status: string;
  order: string[];
  stages: Record<string, StageStateJson>;
}

/** Run folders of a pipeline under the home's runs folder, oldest first (run ids sort by start time). */
export function runDirs(home: FlowHome, pipeline: string): string[] {
  const parent = path.join(home.runsDir, pipeline);
  if (!fs.existsSync(parent)) return [];
  return fs
    .readdirSync(parent)
    .filter((name) => fs.existsSync(path.join(parent, name, 'state.json')))
    .sort()
    .map((name) => path.join(parent, name));
}

/** The newest run folder of a pipeline (fails the test when there is none). */
export function latestRunDir(home: FlowHome, pipeline: string): string {
  const dirs = runDirs(home, pipeline);
  if (dirs.length === 0) throw new Error(`no run folder under ${path.join(home.runsDir, pipeline)}`);
  return dirs[dirs.length - 1]!;
}

export function readRunState(runDir: string): RunStateJson {
  return JSON.parse(fs.readFileSync(path.join(runDir, 'state.json'), 'utf8')) as RunStateJson;
}

export function readJsonFile<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** Stage name → `cached`, `ran` or the stage's status when it is not done. */
export function stageOutcomes(state: RunStateJson): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of state.order) {
    const s = state.stages[name]!;
    out[name] = s.status === 'done' ? (s.cached ? 'cached' : 'ran') : s.status;
  }
  return out;
}

/** Names of the complete training checkpoints (`ckpt-N`) anywhere under the cache's checkpoints folder. */
export function trainingCheckpoints(home: FlowHome): string[] {
  const root = path.join(home.cacheDir, 'checkpoints');
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 3 || !fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (/^ckpt-\d+$/.test(entry.name)) found.push(path.join(dir, entry.name));
      else walk(path.join(dir, entry.name), depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

/** Polls until `check` returns true, failing after `timeoutMs` with what was awaited. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Copies a folder tree (the samples) so a test can break files in its copy. */
export function copyTree(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}

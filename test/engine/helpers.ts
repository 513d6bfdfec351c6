// Shared by the engine tests: a toy stage catalog (test/fixtures/engine/stages/*.mjs, no ML), a project
// folder per test, in-process runs with captured output, and the CLI as a child process (from source via
// tsx, or from dist/ once compiled).
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import { fixturesDir, makeTempDir, repoRoot } from '../helpers/paths.js';
import type { StageCatalogEntry } from '../../engine/catalog.js';
import { describeStageModule, MapCatalog, writeRegistryFile } from '../../engine/registry.js';
import { loadPipeline } from '../../engine/loader.js';
import { runPipeline, type RunOptions, type RunResult } from '../../engine/executor.js';

export const toyStagesDir = path.join(fixturesDir, 'engine', 'stages');
const TOYS = ['source', 'scale', 'count', 'heavy'];

let toyEntries: Promise<StageCatalogEntry[]> | undefined;

/** Catalog entries of the toy stages (imports them once per test process). */
export function toyCatalogEntries(): Promise<StageCatalogEntry[]> {
  toyEntries ??= Promise.all(
    TOYS.map(async (name) => {
      const modulePath = path.join(toyStagesDir, `${name}.mjs`);
      const probe = await describeStageModule({ modulePath, sourcePath: modulePath, schemaPath: null, projectRoot: repoRoot });
      return describeStageModule({ modulePath, sourcePath: modulePath, schemaPath: path.join(fixturesDir, 'engine', 'schemas', `${probe.kind}.schema.json`), projectRoot: repoRoot });
    }),
  );
  return toyEntries;
}

export interface Project {
  dir: string;
  cacheDir: string;
  runsDir: string;
  registry: string;
  catalog: MapCatalog;
  write(rel: string, text: string): string;
}

/** A temp project folder with a registry file of the toy stages (for spawned CLIs: FLOW_STAGE_REGISTRY). */
export async function makeProject(entries?: StageCatalogEntry[]): Promise<Project> {
  const dir = makeTempDir('flow-engine-');
  const list = entries ?? (await toyCatalogEntries());
  const registry = path.join(dir, 'toy-registry.json');
  writeRegistryFile(registry, list);
  return {
    dir,
    cacheDir: path.join(dir, '.flow', 'cache'),
    runsDir: path.join(dir, 'runs'),
    registry,
    catalog: new MapCatalog(list),
    write(rel: string, text: string): string {
      const file = path.join(dir, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      return file;
    },
  };
}

export interface InProcessRun extends RunResult {
  output: string;
}

/** Loads and runs a pipeline in this process, capturing the status lines. */
export async function runInProcess(project: Project, file: string, options: { overrides?: string[]; catalog?: MapCatalog } & Partial<RunOptions> = {}): Promise<InProcessRun> {
  const catalog = options.catalog ?? project.catalog;
  const p = loadPipeline(file, { baseDir: project.dir, overrides: options.overrides ?? [], catalog });
  const sink = new PassThrough();
  let output = '';
  sink.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const result = await runPipeline(p, { cacheDir: project.cacheDir, runsDir: project.runsDir, flowRoot: repoRoot, stderr: sink, ...options, catalog });
  return { ...result, output };
}

/** Stage name → `cached` | `ran` | other status, from a run's state. */
export function stageOutcomes(result: RunResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, s] of Object.entries(result.state.stages)) out[name] = s.status === 'done' ? (s.cached ? 'cached' : 'ran') : s.status;
  return out;
}

/** The command that starts the CLI: the compiled entry when running from dist/, else the source via tsx. */
export function cliArgv(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return [path.join(repoRoot, 'dist', 'engine', 'cli-entry.js')];
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsx, path.join(repoRoot, 'engine', 'cli-entry.ts')];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function spawnCli(project: Project, args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliResult>; stderrSoFar: () => string } {
  const child = spawn(process.execPath, [...cliArgv(), ...args], {
    cwd: project.dir,
    env: { ...process.env, FLOW_STAGE_REGISTRY: project.registry, FLOW_CACHE: '', FLOW_RUNS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderrSoFar: () => stderr };
}

export function runCli(project: Project, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return spawnCli(project, args, env).done;
}

/** Polls until `check` returns true (or fails after `timeoutMs`). */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Reads every file under a folder (relative path → content), to compare outputs across runs. */
export function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const abs = path.join(dir, rel);
    const st = fs.statSync(abs);
    if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) walk(rel === '' ? name : `${rel}/${name}`);
    else out[rel] = fs.readFileSync(abs, 'utf8');
  };
  walk('');
  return out;
}

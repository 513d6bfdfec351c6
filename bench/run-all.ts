// Runs every bench and prints their tables (each with its baseline measured in the same run and the ratio).
//   npm run bench                       all benches, full sizes
//   npm run bench -- --quick            small sizes, a smoke run
//   npm run bench -- tfrecord train     only benches whose name contains one of the filters
// From the sources: node --import tsx bench/run-all.ts [--quick] [filters...]
// Each bench runs in its own child process: backends (wasm/cpu), heap peaks and module state stay separate.
// A bench exporting `run(options): Promise<BenchTable[]>` (bench/table.ts) hands its tables back as JSON and
// they are printed here; a bench without it is run as a script and its own output is shown as-is.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatTable, isMainModule, machineLine, type BenchRun, type BenchTable } from './table.js';

/** In run order: fast ones first so a smoke run shows something early. */
export const BENCHES = ['engine', 'tfrecord', 'image', 'datasets', 'eval', 'pipelines', 'tensor-bytes', 'sweep', 'train-speed', 'train-parallel', 'conv3d', 'scale'] as const;

const TABLES_MARKER = '@@flow-bench-tables ';

const thisFile = fileURLToPath(import.meta.url);
const extension = path.extname(thisFile); // .ts from the sources (tsx), .js after the build

function benchFile(name: string): string {
  return path.join(path.dirname(thisFile), `${name}${extension}`);
}

/** Whether the bench exports the common `run` (read from its text: importing a script-style bench runs it). */
function exportsRun(file: string): boolean {
  const text = fs.readFileSync(file, 'utf8');
  return /export\s+(async\s+)?function\s+run\s*\(|export\s*\{[^}]*\brun\b[^}]*\}|export\s+const\s+run\b/.test(text);
}

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function runChild(args: string[]): Promise<ChildResult> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    // Progress lines from benches go straight through (they go to stderr), and are kept for failure reports.
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      process.stderr.write(text);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - start) / 1000 }));
  });
}

/** Child mode: import one bench, run it, print its tables as one JSON line. */
async function childMain(name: string, quick: boolean): Promise<void> {
  const module = (await import(pathToFileURL(benchFile(name)).href)) as { run?: BenchRun };
  if (typeof module.run !== 'function') throw new Error(`bench/${name}: no exported run(options)`);
  const tables = await module.run({ quick });
  process.stdout.write(`${TABLES_MARKER}${JSON.stringify(tables)}\n`);
}

export interface RunAllOptions {
  quick: boolean;
  /** Substrings of bench names; empty = all. */
  filters: string[];
}

/** Runs the selected benches one after another, printing each as it finishes; returns the failed ones. */
export async function runAll(options: RunAllOptions): Promise<string[]> {
  const unknown = options.filters.filter((filter) => !BENCHES.some((name) => name.includes(filter)));
  if (unknown.length > 0) throw new Error(`no bench matches ${unknown.join(', ')}; benches: ${BENCHES.join(', ')}`);
  const selected = BENCHES.filter((name) => options.filters.length === 0 || options.filters.some((filter) => name.includes(filter)));
  process.stdout.write(`# flow benches${options.quick ? ' (--quick)' : ''}\n\n${machineLine()}\n\n`);
  const failed: string[] = [];
  for (const name of selected) {
    const file = benchFile(name);
    if (!fs.existsSync(file)) {
      process.stdout.write(`## ${name}\n\n(not present: bench/${name}${extension})\n\n`);
      continue;
    }
    process.stderr.write(`running bench/${name}${extension}${options.quick ? ' --quick' : ''} ...\n`);
    const structured = exportsRun(file);
    const result = structured
      ? await runChild([thisFile, '--child', name, ...(options.quick ? ['--quick'] : [])])
      : await runChild([file, ...(options.quick ? ['--quick'] : [])]);
    process.stdout.write(`## ${name} (${result.seconds.toFixed(0)} s)\n\n`);
    const tablesLine = result.stdout.split('\n').find((line) => line.startsWith(TABLES_MARKER));
    if (result.code !== 0 || (structured && tablesLine === undefined)) {
      failed.push(name);
      const tail = result.stderr.trim().split('\n').slice(-15).join('\n');
      process.stdout.write(`FAILED (exit ${result.code}):\n\n\`\`\`\n${tail}\n\`\`\`\n\n`);
      continue;
    }
    if (tablesLine !== undefined) {
      const tables = JSON.parse(tablesLine.slice(TABLES_MARKER.length)) as BenchTable[];
      for (const table of tables) process.stdout.write(`${formatTable(table)}\n\n`);
    } else {
      process.stdout.write(`\`\`\`\n${result.stdout.trim()}\n\`\`\`\n\n`);
    }
  }
  return failed;
}

if (isMainModule(import.meta.url)) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  if (args[0] === '--child') {
    await childMain(args[1]!, quick);
  } else {
    const filters = args.filter((arg) => !arg.startsWith('--'));
    try {
      const failed = await runAll({ quick, filters });
      if (failed.length > 0) {
        process.stderr.write(`failed: ${failed.join(', ')}\n`);
        process.exitCode = 1;
      }
    } catch (error) {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 2;
    }
  }
}

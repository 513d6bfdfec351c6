// A sweep on this machine's cores: the same grid of carvana runs (small settings) one after another (--jobs 1)
// and concurrently (--jobs 2, --jobs 4), each from an empty cache, so every mode computes the shared data stages
// once and every combination's training once. Run: `node --import tsx bench/sweep.ts [--quick]` or compiled.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { makeTempDir, repoRoot } from '../test/helpers/paths.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

function flowArgv(): string[] {
  if (fs.existsSync(path.join(repoRoot, 'dist', 'engine', 'cli.js'))) return [path.join(repoRoot, 'bin', 'flow.js')];
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsx, path.join(repoRoot, 'engine', 'cli-entry.ts')];
}

/** One whole sweep as a `flow run --sweep` process in a fresh cache and runs folder; seconds of wall time. */
function sweep(args: readonly string[], jobs: number): Promise<number> {
  const home = makeTempDir('flow-bench-sweep-');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flowArgv(), 'run', path.join(repoRoot, 'pipelines', 'carvana.yaml'), ...args, '--jobs', String(jobs)], {
      cwd: repoRoot,
      env: { ...process.env, FLOW_CACHE: path.join(home, 'cache'), FLOW_RUNS: path.join(home, 'runs'), FLOW_STAGE_REGISTRY: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      fs.rmSync(home, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`flow run --sweep --jobs ${jobs} exited ${code}:\n${stderr.slice(-2000)}`));
      else resolve(seconds);
    });
  });
}

export async function run(options: BenchOptions): Promise<BenchTable[]> {
  const settings = ['train.epochs=2', 'train.input_size=[32,32]', 'train.filters=4'].flatMap((s) => ['--set', s]);
  const grid = options.quick ? ['train.lr=1e-3,3e-3', 'train.loss=bce,bce_dice'] : ['train.lr=1e-3,3e-3', 'train.loss=bce,bce_dice', 'train.seed=1,2'];
  const runs = options.quick ? 4 : 8;
  const args = [...settings, ...grid.flatMap((g) => ['--sweep', g])];
  // Concurrent runs with one training worker each: the cores go to runs instead of to data parallelism.
  const modes: { jobs: number; extra: string[]; label: string }[] = [
    { jobs: 1, extra: [], label: '--jobs 1 (one after another)' },
    { jobs: 2, extra: [], label: '--jobs 2 (concurrent)' },
    ...(options.quick ? [] : [{ jobs: 4, extra: [], label: '--jobs 4 (concurrent)' }]),
    { jobs: 2, extra: ['--set', '+train.workers=1'], label: '--jobs 2, train.workers=1' },
  ];
  const seconds: number[] = [];
  for (const mode of modes) {
    process.stderr.write(`  sweep of ${runs}: ${mode.label} ...\n`);
    seconds.push(await sweep([...args, ...mode.extra], mode.jobs));
  }
  const sequential = seconds[0]!;
  return [
    {
      title: `A sweep of ${runs} carvana runs on ${os.availableParallelism()} cores: concurrent against one after another`,
      columns: ['mode', 'wall', 'per run', 'speed-up vs --jobs 1'],
      rows: modes.map((mode, i) => [mode.label, `${seconds[i]!.toFixed(1)} s`, `${(seconds[i]! / runs).toFixed(1)} s`, `${(sequential / seconds[i]!).toFixed(2)}x`]),
      notes: [
        machineLine(),
        `grid: ${grid.join(' × ')}; ${settings.filter((s) => s !== '--set').join(' ')}; each mode from an empty cache (shared data stages once, ${runs} trainings)`,
        'each run is a child flow process; training uses the default workers (auto: data-parallel on 2 cores), so concurrent runs share the cores',
      ],
    },
  ];
}

if (isMainModule(import.meta.url)) {
  printTables(await run({ quick: quickFromArgv() }));
}

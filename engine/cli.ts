// The `flow` command line: hand-written argv parsing (no heavy deps at start-up; pino, execa, chokidar and
// stage modules are imported only when needed) so a fully cached run starts and ends fast.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedPipeline } from './loader.js';
import type { StageCatalog } from './catalog.js';
import { UsageError } from './usage-error.js';

const USAGE = `usage: flow <command> [options]

commands:
  run FILE [--set k=v ...] [--from STAGE] [--force STAGE] [--jobs N]   run a pipeline (cached stages are reused)
  run FILE --sweep k=a,b [--sweep j=1..3 ...] [--jobs N]             run every combination (a sweep)
  resume [RUN|SWEEP]            continue an interrupted or failed run or sweep (default: the latest run)
  runs [PIPELINE] [--json]      list runs: id, status, params that differ, key metrics
  show RUN|SWEEP [--json]       one run: config, stage states, metrics, where files are; or one sweep
  diff RUN_A RUN_B [--json] [--html [FILE]]
                                changed params, metric deltas, stages that re-ran and why, per-case changes
  validate FILE [--set k=v ...] check a pipeline file (exit 1 on any error)
  graph FILE [--mermaid|--dot]  print the stage DAG
  watch FILE [--set k=v ...]    re-run dirty stages whenever the pipeline or its inputs change
  gc [--dry-run]                delete cache entries no run folder references
  verify [RUN | --all]          re-read cache entries and check every file against its manifest
  init DATA_DIR [-o FILE]       detect a dataset's layout and write a pipeline planned from its data

common options:
  --cache DIR   cache folder (default: $FLOW_CACHE or ./.flow/cache)
  --runs DIR    runs folder (default: $FLOW_RUNS or ./runs)
  --help        help for a command

RUN is a run id, a unique prefix of one, a path to a run folder, or "latest".
exit codes: 0 ok, 1 a stage failed / validation failed, 2 usage or pipeline error, 130 interrupted
`;

const COMMAND_HELP: Record<string, string> = {
  run: `usage: flow run FILE [--set key=value ...] [--from STAGE] [--force STAGE] [--jobs N] [--cache DIR] [--runs DIR]
  Runs the pipeline. Each stage is a cache hit (its outputs are linked) or runs, and the reason is printed.
  --set key=value   override a param (value parsed as YAML); prefix the key with + to add a new one
  --from STAGE      re-run STAGE and everything downstream, ignoring the cache
  --force STAGE     re-run exactly STAGE (downstream re-runs only if its outputs changed)
  --jobs N          run up to N independent stages at once (default 1); with --sweep: N runs at once
  --sweep key=VALUES  run one run per combination of the swept values (repeat for a grid). VALUES is a
                    comma list of --set values and ranges: 1e-4,3e-4  bce,bce_dice  1..4  0..20:5
                    1e-4:1e-2:log3 (3 values, log-spaced)  0:1:lin5. Each run is a run folder of its own;
                    the sweep's folder runs/<pipeline>/sweeps/<id>/ has sweep.json and report.html
`,
  resume: `usage: flow resume [RUN | SWEEP] [--jobs N] [--cache DIR] [--runs DIR]
  Continues a run in its own folder: finished stages are kept, an interrupted stage continues from its
  checkpoint. RUN defaults to the latest run of any pipeline. SWEEP (a sweep id, a unique prefix of one, or
  its folder) finishes a sweep: runs never started start, stopped runs resume, finished runs stay.
`,
  runs: `usage: flow runs [PIPELINE] [--json] [--runs DIR]
  Lists runs, oldest first: id, status (with the stage a failed or interrupted run stopped at), start,
  duration, the params that differ between them, key metrics (dice, hd95, iou, loss, ...; at most six).
  Long values are shortened in the middle; --json gives every param and metric in full.
`,
  show: `usage: flow show RUN|SWEEP [--json] [--runs DIR]
  Shows one run: config summary, stage states (cached or why it ran, durations), metrics, file locations.
  For a sweep (its id, a unique prefix, or its folder): what was swept, its runs with their key metrics, the
  combinations not started yet, and where its report is.
`,
  diff: `usage: flow diff RUN_A RUN_B [--json] [--html [FILE]] [--runs DIR]
  Compares two runs: changed params (old → new), metric deltas (signed: "better" or "worse"; hd, loss, error
  and distance metrics are better when lower), stages that re-ran and why, and per case: every table of
  cases in metrics.json (an array of objects with an id, e.g. regions.<R>.per_case) matched by id, the cases
  that got better or worse, biggest change first. A metric whose definition (metrics.json "definitions")
  differs between the runs is named, not compared.
  --json          the whole comparison as JSON
  --html [FILE]   also write a self-contained page with the per-case table and, for the 6 most-changed
                  cases, both runs' pictures side by side (image files of the report: outputs named after
                  the case); FILE defaults to runs/<pipeline>/diff-<A>-<B>.html
`,
  validate: `usage: flow validate FILE [--set key=value ...]
  Checks the pipeline file and overrides; prints every problem with file:line:column.
`,
  graph: `usage: flow graph FILE [--mermaid | --dot]
  Prints the stage DAG as a text tree (default), Mermaid or Graphviz DOT.
`,
  watch: `usage: flow watch FILE [--set key=value ...] [--jobs N] [--cache DIR] [--runs DIR]
  Runs the pipeline, then watches the pipeline file and every declared input; on a change (debounced) it
  re-runs, and only the dirty stages recompute.
`,
  gc: `usage: flow gc [--dry-run] [--cache DIR] [--runs DIR]
  Deletes cache entries and checkpoints that no run folder references, damaged and incomplete entries,
  abandoned temp folders and stale locks. Everything is moved into the cache's trash/ before it is deleted,
  so an interrupted gc never leaves half an entry; the next gc empties the trash.
`,
  verify: `usage: flow verify [RUN | --all] [--cache DIR] [--runs DIR]
  Re-reads the cache entries of RUN (default: the latest run), or every entry with --all, and checks each
  file's size and xxhash128 against the manifest written when the entry was committed. (Every cache hit
  already checks sizes and, through the stat cache, digests; this also catches changes that kept a file's
  size and timestamps.) Damaged entries are moved to the cache's damaged/ folder and recomputed by the next
  run. Exit 1 when any entry was damaged, or (for RUN) is missing.
`,
};

/** Commands implemented outside the engine, loaded by module path; each parses its own arguments. */
const EXTENSION_COMMANDS: Record<string, string> = { init: '../lib/datasets/init/command.js' };

interface ParsedArgs {
  command: string | undefined;
  positionals: string[];
  sets: string[];
  sweeps: string[];
  from: string[];
  force: string[];
  jobs: number;
  cache: string | undefined;
  runs: string | undefined;
  json: boolean;
  /** `--html [FILE]`: true for the default file. */
  html: string | true | undefined;
  dryRun: boolean;
  all: boolean;
  format: 'text' | 'mermaid' | 'dot';
  help: boolean;
}

function parseArgs(argv: string[]): ParsedArgs {
  const args: ParsedArgs = { command: undefined, positionals: [], sets: [], sweeps: [], from: [], force: [], jobs: 1, cache: undefined, runs: undefined, json: false, html: undefined, dryRun: false, all: false, format: 'text', help: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    let flag = raw;
    let inline: string | undefined;
    if (raw.startsWith('--') && raw.includes('=')) {
      flag = raw.slice(0, raw.indexOf('='));
      inline = raw.slice(raw.indexOf('=') + 1);
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case '--set':
      case '-s':
        args.sets.push(value());
        break;
      case '--sweep':
        args.sweeps.push(value());
        break;
      case '--from':
        args.from.push(value());
        break;
      case '--force':
        args.force.push(value());
        break;
      case '--jobs':
      case '-j': {
        const v = value();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--jobs needs a positive integer, got "${v}"`);
        args.jobs = n;
        break;
      }
      case '--cache':
        args.cache = value();
        break;
      case '--runs':
        args.runs = value();
        break;
      case '--json':
        args.json = true;
        break;
      case '--html': {
        // FILE is optional: take the next argument when it names an .html file or both runs are already given.
        const next = argv[i + 1];
        if (inline !== undefined) args.html = inline;
        else if (next !== undefined && !next.startsWith('-') && (/\.html?$/i.test(next) || args.positionals.length >= 2)) args.html = argv[++i]!;
        else args.html = true;
        break;
      }
      case '--dry-run':
        args.dryRun = true;
        break;
      case '--all':
        args.all = true;
        break;
      case '--mermaid':
        args.format = 'mermaid';
        break;
      case '--dot':
        args.format = 'dot';
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        if (raw.startsWith('-') && raw !== '-') throw new UsageError(`unknown option ${raw}`);
        if (args.command === undefined) args.command = raw;
        else args.positionals.push(raw);
    }
  }
  return args;
}

/** The flow installation: the folder with package.json above this module (outside dist/). */
function flowRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

function cacheDirOf(args: ParsedArgs, baseDir: string): string {
  return path.resolve(args.cache ?? (process.env.FLOW_CACHE || path.join(baseDir, '.flow', 'cache')));
}
function runsDirOf(args: ParsedArgs, baseDir: string): string {
  return path.resolve(args.runs ?? (process.env.FLOW_RUNS || path.join(baseDir, 'runs')));
}

function expectPositionals(args: ParsedArgs, min: number, max: number, what: string): void {
  if (args.positionals.length < min) throw new UsageError(`flow ${args.command} needs ${what} (see flow ${args.command} --help)`);
  if (args.positionals.length > max) throw new UsageError(`flow ${args.command}: unexpected argument ${args.positionals[max]}`);
}

async function catalogFor(): Promise<StageCatalog> {
  const { loadCatalog } = await import('./registry.js');
  return loadCatalog(flowRoot());
}

async function load(file: string, overrides: string[], baseDir: string, catalog: StageCatalog): Promise<ResolvedPipeline> {
  const { loadPipeline } = await import('./loader.js');
  if (!fs.existsSync(file)) throw new UsageError(`pipeline file ${file} does not exist`);
  return loadPipeline(path.resolve(file), { baseDir, overrides, catalog });
}

async function runCommand(args: ParsedArgs, resume: boolean): Promise<number> {
  const { runPipeline } = await import('./executor.js');
  const catalog = await catalogFor();
  const baseDir = process.cwd();
  if (resume) {
    expectPositionals(args, 0, 1, 'RUN');
    const sweepDir = (await import('./sweeps/manifest.js')).findSweep(runsDirOf(args, baseDir), args.positionals[0]);
    if (sweepDir !== null) {
      const { resumeSweep } = await import('./sweeps/run.js');
      const runsDir = path.dirname(path.dirname(path.dirname(sweepDir)));
      return (await resumeSweep(sweepDir, { catalog, runsDir, ...(args.cache ? { cacheDir: path.resolve(args.cache) } : {}), ...(args.jobs > 1 ? { jobs: args.jobs } : {}) })).exitCode;
    }
    const { resolveRun, readRunState } = await import('./run-folder.js');
    const runDir = resolveRun(runsDirOf(args, baseDir), args.positionals[0]);
    const state = readRunState(runDir)!;
    if (state.status === 'done') {
      // A done run is done only while its results are there: restore deleted links; recompute what is gone.
      const { repairStageLinks } = await import('./run-folder.js');
      const { Cache } = await import('./cache.js');
      const repaired = repairStageLinks(runDir, state);
      for (const line of repaired.lines) process.stderr.write(`${line}\n`);
      const cache = new Cache(args.cache ? path.resolve(args.cache) : state.cacheDir);
      let lost = repaired.unrecoverable.length;
      for (const name of state.order) {
        const key = state.stages[name]?.key;
        const found = key ? await cache.findReusable(key) : undefined;
        if (found && 'damaged' in found) (lost += 1), process.stderr.write(`stages/${name}: ${found.damaged}\n`);
      }
      if (lost === 0) {
        // (A run killed before its first state.json is not resumable; its folder is cleared as a run would.)
        const { abandonedRunDirs } = await import('./run-folder.js');
        for (const dir of abandonedRunDirs(path.dirname(path.dirname(runDir)), state.pipeline)) fs.rmSync(dir, { recursive: true, force: true });
        process.stderr.write(`run ${state.runId} is already done; nothing to resume\n`);
        return 0;
      }
    }
    if (state.status === 'running') throw new UsageError(`run ${state.runId} is still running (pid ${state.pid} on ${state.host})`);
    process.stderr.write(`resuming run ${state.runId} (${state.pipeline})\n`);
    const p = await load(state.file, state.overrides, state.baseDir, catalog);
    const result = await runPipeline(p, { catalog, cacheDir: args.cache ? path.resolve(args.cache) : state.cacheDir, runsDir: path.dirname(path.dirname(runDir)), flowRoot: flowRoot(), jobs: args.jobs, resumeRunDir: runDir, handleSignals: true });
    process.stderr.write(`run ${result.runId}: ${result.status} (${result.runDir})\n`);
    return result.exitCode;
  }
  expectPositionals(args, 1, 1, 'a pipeline FILE');
  if (args.sweeps.length > 0) {
    if (args.from.length > 0 || args.force.length > 0) throw new UsageError('--from and --force re-run stages of one run; they do not combine with --sweep');
    if (!fs.existsSync(args.positionals[0]!)) throw new UsageError(`pipeline file ${args.positionals[0]} does not exist`);
    const { runSweep } = await import('./sweeps/run.js');
    const sweep = await runSweep(args.positionals[0]!, baseDir, args.sets, args.sweeps, { catalog, cacheDir: cacheDirOf(args, baseDir), runsDir: runsDirOf(args, baseDir), jobs: args.jobs });
    return sweep.exitCode;
  }
  const p = await load(args.positionals[0]!, args.sets, baseDir, catalog);
  const result = await runPipeline(p, {
    catalog,
    cacheDir: cacheDirOf(args, baseDir),
    runsDir: runsDirOf(args, baseDir),
    flowRoot: flowRoot(),
    jobs: args.jobs,
    from: args.from,
    force: args.force,
    handleSignals: true,
  });
  process.stderr.write(`run ${result.runId}: ${result.status} (${result.runDir})\n`);
  return result.exitCode;
}

async function watchCommand(args: ParsedArgs): Promise<number> {
  expectPositionals(args, 1, 1, 'a pipeline FILE');
  const file = path.resolve(args.positionals[0]!);
  const baseDir = process.cwd();
  const catalog = await catalogFor();
  const { runPipeline } = await import('./executor.js');
  const { watch } = await import('chokidar');
  const watcher = watch(file, { ignoreInitial: true });
  const watched = new Set<string>([file]);
  let busy = false;
  let again = false;
  let timer: NodeJS.Timeout | null = null;
  const cycle = async (why: string): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    process.stderr.write(`\n── ${why}\n`);
    try {
      const p = await load(file, args.sets, baseDir, catalog);
      // Watch every path input and command dep (they may have changed since the last load).
      for (const stage of Object.values(p.stages)) {
        const refs = [...Object.values(stage.inputs), ...(stage.command ?? []).filter((x) => typeof x !== 'string')];
        for (const ref of refs) {
          if (typeof ref === 'string' || ref.type !== 'path') continue;
          const abs = path.resolve(p.baseDir, ref.path);
          if (!watched.has(abs)) (watched.add(abs), watcher.add(abs));
        }
      }
      const result = await runPipeline(p, { catalog, cacheDir: cacheDirOf(args, baseDir), runsDir: runsDirOf(args, baseDir), flowRoot: flowRoot(), jobs: args.jobs });
      process.stderr.write(`run ${result.runId}: ${result.status}; watching ${watched.size} paths (Ctrl+C to stop)\n`);
    } catch (err) {
      await reportError(err);
    } finally {
      busy = false;
      if (again) {
        again = false;
        void cycle('changes during the last run');
      }
    }
  };
  watcher.on('all', (event, changed) => {
    if (timer !== null) clearTimeout(timer);
    // Debounce: editors write files in several steps; one re-run per burst of changes.
    timer = setTimeout(() => void cycle(`${event} ${path.relative(baseDir, changed) || changed}: re-running dirty stages`), 300);
  });
  await cycle('initial run');
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await watcher.close();
  return 130;
}

async function reportError(err: unknown): Promise<number> {
  const { PipelineError, formatDiagnostic } = await import('./loader.js');
  if (err instanceof PipelineError) {
    const n = err.diagnostics.length;
    const files = [...new Set(err.diagnostics.map((d) => d.file))].join(', ');
    process.stderr.write(`flow: error: ${n} problem${n === 1 ? '' : 's'} in ${files}\n`);
    for (const d of err.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
    return 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`flow: error: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`flow: error: ${(err as Error).message ?? String(err)}\n`);
  return 1;
}

/** Tables are fitted to the terminal; piped output uses $COLUMNS, else 160. */
function terminalWidth(): number {
  return (process.stdout.isTTY ? process.stdout.columns : undefined) ?? (Number(process.env.COLUMNS) || 160);
}

async function dispatch(args: ParsedArgs): Promise<number> {
  const baseDir = process.cwd();
  switch (args.command) {
    case 'run':
      return runCommand(args, false);
    case 'resume':
      return runCommand(args, true);
    case 'runs': {
      expectPositionals(args, 0, 1, 'PIPELINE');
      const { listRunSummaries, formatRunsTable, sweptKeysOf } = await import('./inspect.js');
      const runsDir = runsDirOf(args, baseDir);
      const runs = await listRunSummaries(runsDir, args.positionals[0]);
      process.stdout.write(args.json ? JSON.stringify(runs, null, 2) + '\n' : formatRunsTable(runs, terminalWidth(), await sweptKeysOf(runsDir, args.positionals[0])));
      return 0;
    }
    case 'show': {
      expectPositionals(args, 1, 1, 'RUN');
      const sweepDir = (await import('./sweeps/manifest.js')).findSweep(runsDirOf(args, baseDir), args.positionals[0]);
      if (sweepDir !== null) {
        const { collectSweep, formatSweep } = await import('./sweeps/report.js');
        const data = await collectSweep(sweepDir, path.dirname(path.dirname(path.dirname(sweepDir))));
        process.stdout.write(args.json ? JSON.stringify(data, null, 2) + '\n' : formatSweep(data, sweepDir, terminalWidth()));
        return 0;
      }
      const { resolveRun } = await import('./run-folder.js');
      const { showRun, formatShow } = await import('./inspect.js');
      const shown = await showRun(resolveRun(runsDirOf(args, baseDir), args.positionals[0]));
      process.stdout.write(args.json ? JSON.stringify(shown, null, 2) + '\n' : formatShow(shown));
      return 0;
    }
    case 'diff': {
      expectPositionals(args, 2, 2, 'two runs RUN_A RUN_B');
      const { resolveRun } = await import('./run-folder.js');
      const { diffRuns, formatDiff, writeDiffHtml, defaultDiffHtmlPath } = await import('./inspect.js');
      const runsDir = runsDirOf(args, baseDir);
      const d = await diffRuns(resolveRun(runsDir, args.positionals[0]), resolveRun(runsDir, args.positionals[1]));
      process.stdout.write(args.json ? JSON.stringify(d, null, 2) + '\n' : formatDiff(d));
      if (args.html !== undefined) {
        const file = writeDiffHtml(d, args.html === true ? defaultDiffHtmlPath(d) : path.resolve(args.html));
        process.stderr.write(`wrote ${file}\n`);
      }
      return 0;
    }
    case 'validate': {
      expectPositionals(args, 1, 1, 'a pipeline FILE');
      const catalog = await catalogFor();
      try {
        const p = await load(args.positionals[0]!, args.sets, baseDir, catalog);
        process.stdout.write(`ok: ${p.order.length} stages\n`);
        return 0;
      } catch (err) {
        const code = await reportError(err);
        return code === 2 ? 1 : code;
      }
    }
    case 'graph': {
      expectPositionals(args, 1, 1, 'a pipeline FILE');
      const catalog = await catalogFor();
      const p = await load(args.positionals[0]!, args.sets, baseDir, catalog);
      const { renderGraph } = await import('./loader.js');
      process.stdout.write(renderGraph(p, args.format).replace(/\n?$/, '\n'));
      return 0;
    }
    case 'watch':
      return watchCommand(args);
    case 'verify': {
      expectPositionals(args, 0, 1, 'RUN');
      if (args.all && args.positionals.length > 0) throw new UsageError('flow verify takes RUN or --all, not both');
      const { resolveRun, readRunState } = await import('./run-folder.js');
      const { verifyEntries, runEntryKeys } = await import('./inspect.js');
      let cacheDir = cacheDirOf(args, baseDir);
      let keys: string[] | null = null;
      if (!args.all) {
        const runDir = resolveRun(runsDirOf(args, baseDir), args.positionals[0]);
        keys = runEntryKeys(runDir);
        if (!args.cache) cacheDir = readRunState(runDir)!.cacheDir;
      }
      const result = await verifyEntries(cacheDir, keys, (line) => process.stdout.write(`${line}\n`));
      const mb = (result.bytes / 1e6).toFixed(1);
      const missing = result.missing.length > 0 ? `; ${result.missing.length} missing` : '';
      if (result.damaged.length === 0) process.stdout.write(`verified ${result.checked} entries (${mb} MB) in ${cacheDir}: all intact${missing}\n`);
      else process.stdout.write(`verified ${result.checked} entries (${mb} MB): ${result.damaged.length} damaged, moved aside; the next run recomputes them${missing}\n`);
      return result.damaged.length === 0 && result.missing.length === 0 ? 0 : 1;
    }
    case 'gc': {
      expectPositionals(args, 0, 0, '');
      const { collectGarbage } = await import('./inspect.js');
      const result = collectGarbage(cacheDirOf(args, baseDir), runsDirOf(args, baseDir), args.dryRun);
      for (const w of result.warnings) process.stderr.write(`flow: warning: ${w}\n`);
      for (const r of result.removed) process.stdout.write(`${args.dryRun ? 'would delete' : 'deleted'} ${r.path} (${r.bytes} bytes)\n`);
      process.stdout.write(`${args.dryRun ? 'would free' : 'freed'} ${result.bytes} bytes in ${result.removed.length} items; kept ${result.kept} referenced entries\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${args.command}"; commands: ${Object.keys(COMMAND_HELP).join(', ')}`);
  }
}

/** Runs the CLI with the given arguments (without `node flow`); resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  // A closed pipe (`flow run ... | head`) must not kill a running pipeline: drop the output, keep working.
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') === 0) stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  const extension = argv[0] === undefined ? undefined : EXTENSION_COMMANDS[argv[0]];
  if (extension !== undefined) {
    const command = (await import(extension)) as { default: (args: string[]) => Promise<number> };
    return command.default(argv.slice(1));
  }
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`flow: error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.command === undefined || (args.help && args.command === 'help')) {
    (args.help || args.command === undefined ? process.stdout : process.stderr).write(USAGE);
    return args.help ? 0 : 2;
  }
  if (args.command === 'help') {
    process.stdout.write(COMMAND_HELP[args.positionals[0] ?? ''] ?? USAGE);
    return 0;
  }
  if (args.help) {
    process.stdout.write(COMMAND_HELP[args.command] ?? USAGE);
    return 0;
  }
  try {
    return await dispatch(args);
  } catch (err) {
    return reportError(err);
  }
}

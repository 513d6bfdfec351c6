// Both sample pipelines through the real CLI: once on a cold cache (a fresh temp cache and runs folder), then
// fully cached. Prints, per pipeline, each stage's wall time (state.json), the cold total, the cached re-run's
// wall time, the backend (env.json) and the peak RSS of the `flow` process (VmHWM, read from /proc by a tiny
// preload in the child just before it exits, so no external `time` binary is needed).
// Usage: node dist/bench/pipelines.js [carvana|brats ...] [--set k=v ...]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeFlowHome, readJsonFile, readRunState, latestRunDir, spawnFlow, pipelinesDir, setArgs, type FlowHome } from '../test/e2e/helpers.js';

export interface StageTiming {
  stage: string;
  status: string;
  cached: boolean;
  seconds: number | null;
}

export interface PipelineBench {
  pipeline: string;
  coldSeconds: number;
  cachedSeconds: number;
  stages: StageTiming[];
  backend: string;
  coldPeakRssMiB: number | null;
  cachedPeakRssMiB: number | null;
  status: string;
  metrics: Record<string, number>;
}

/** A preload that appends `<pid> <peak RSS kB>` (VmHWM) to a file when a process exits. NODE_OPTIONS reaches
 * the commands a command stage starts too, so the flow process's own line is picked by its pid. */
export function writeRssProbe(dir: string): string {
  const probe = path.join(dir, 'rss-probe.cjs');
  fs.writeFileSync(
    probe,
    "const fs=require('fs');process.on('exit',()=>{try{const m=/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status','utf8'));" +
      "if(m)fs.appendFileSync(process.env.FLOW_BENCH_RSS_FILE,process.pid+' '+m[1]+'\\n')}catch{}});\n",
  );
  return probe;
}

export async function timedRun(home: FlowHome, pipelineFile: string, overrides: string[], probe: string, rssFile: string): Promise<{ seconds: number; peakRssMiB: number | null; code: number | null; stderr: string }> {
  fs.rmSync(rssFile, { force: true });
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --require ${probe}`.trim();
  const run = spawnFlow(home, ['run', pipelineFile, ...setArgs(overrides)], { env: { NODE_OPTIONS: nodeOptions, FLOW_BENCH_RSS_FILE: rssFile } });
  const result = await run.done;
  const lines = fs.existsSync(rssFile) ? fs.readFileSync(rssFile, 'utf8').trim().split('\n') : [];
  // Worker threads share the process, so the flow process's VmHWM covers its workers too.
  const own = lines.map((line) => line.split(' ').map(Number)).find(([pid]) => pid === run.child.pid);
  return { seconds: result.wallMs / 1000, peakRssMiB: own ? own[1]! / 1024 : null, code: result.code, stderr: result.stderr };
}

/** Runs one sample pipeline cold then cached; throws when either run fails. */
export async function benchPipeline(name: string, overrides: string[] = []): Promise<PipelineBench> {
  const home = makeFlowHome(`flow-bench-${name}-`);
  const probe = writeRssProbe(home.dir);
  const rssFile = path.join(home.dir, 'rss.txt');
  const file = path.join(pipelinesDir, `${name}.yaml`);
  try {
    const cold = await timedRun(home, file, overrides, probe, rssFile);
    if (cold.code !== 0) throw new Error(`${name}: cold run exited ${cold.code}:\n${cold.stderr.slice(-2000)}`);
    const runDir = latestRunDir(home, name);
    const state = readRunState(runDir);
    const env = readJsonFile<{ backend?: string; stages?: Record<string, { backend?: string }> }>(path.join(runDir, 'env.json'));
    const cached = await timedRun(home, file, overrides, probe, rssFile);
    if (cached.code !== 0) throw new Error(`${name}: cached run exited ${cached.code}:\n${cached.stderr.slice(-2000)}`);
    const metricsJson = readJsonFile<Record<string, unknown>>(path.join(runDir, 'metrics.json'));
    const metrics: Record<string, number> = {};
    for (const [key, value] of Object.entries(metricsJson)) if (typeof value === 'number' && /(^dice$|_dice$|_hd95$|^hd95$)/.test(key) && !/global/.test(key)) metrics[key] = value;
    return {
      pipeline: name,
      coldSeconds: cold.seconds,
      cachedSeconds: cached.seconds,
      stages: state.order.map((stage) => {
        const s = state.stages[stage]!;
        return { stage, status: s.status, cached: s.cached, seconds: s.durationMs === null ? null : s.durationMs / 1000 };
      }),
      backend: env.backend ?? findBackend(env) ?? 'unknown',
      coldPeakRssMiB: cold.peakRssMiB,
      cachedPeakRssMiB: cached.peakRssMiB,
      status: state.status,
      metrics,
    };
  } finally {
    fs.rmSync(home.dir, { recursive: true, force: true });
  }
}

/** env.json keeps backend facts flat or per stage depending on who recorded them: take the first found. */
function findBackend(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'backend' && typeof inner === 'string') return inner;
    const found = findBackend(inner);
    if (found) return found;
  }
  return undefined;
}

/** The table: one row per stage and the summary lines, as printed. */
export function formatPipelineBench(results: readonly PipelineBench[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`## ${r.pipeline} (backend ${r.backend})`, '', '| stage | cold wall s |', '|---|---:|');
    for (const s of r.stages) lines.push(`| ${s.stage} | ${s.seconds === null ? '-' : s.seconds.toFixed(1)}${s.cached ? ' (cached)' : ''} |`);
    lines.push(
      `| **total (cold, process wall)** | **${r.coldSeconds.toFixed(1)}** |`,
      `| **fully cached re-run (process wall)** | **${r.cachedSeconds.toFixed(2)}** |`,
      '',
      `peak RSS of flow: cold ${r.coldPeakRssMiB?.toFixed(0) ?? '?'} MiB, cached ${r.cachedPeakRssMiB?.toFixed(0) ?? '?'} MiB`,
      `metrics: ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`,
      '',
    );
  }
  return lines.join('\n');
}

/** Entry for bench/run-all.ts: both sample pipelines as shipped (or the named ones). */
export async function runPipelinesBench(names: readonly string[] = ['carvana', 'brats'], overrides: string[] = []): Promise<PipelineBench[]> {
  const results: PipelineBench[] = [];
  for (const name of names) results.push(await benchPipeline(name, overrides));
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const args = process.argv.slice(2);
  const names: string[] = [];
  const overrides: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--set') overrides.push(args[++i]!);
    else names.push(args[i]!);
  }
  const results = await runPipelinesBench(names.length > 0 ? names : ['carvana', 'brats'], overrides);
  console.log(formatPipelineBench(results));
}

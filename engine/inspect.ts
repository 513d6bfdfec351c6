// Inspection of run folders for the CLI: `flow runs`, `flow show`, `flow diff`, and `flow gc`.
import fs from 'node:fs';
import path from 'node:path';
import type { JsonObject, JsonValue } from './stage.js';
import { readJsonIfExists, writeFileAtomic } from './fs-util.js';
import { compareCases, definitionOf, formatCaseComparison, improvementOf, lowerIsBetter, renderDiffHtml, sameDefinition, type PerCaseComparison } from './compare.js';
import { sizeOfPath } from './hashing.js';
import { abandonedRunDirs, checkStageLinks, listRuns, readRunState, repairStageLinks, type RunState } from './run-folder.js';
import { Cache } from './cache.js';
import { inspectLock } from './lease-lock.js';
import { isAbandonedTemp } from './atomic-write.js';

export interface RunSummary {
  runId: string;
  pipeline: string;
  runDir: string;
  status: string;
  /** The stage that failed or was interrupted (null for a finished or running run). */
  stoppedAt: string | null;
  /** That stage's error message, if any. */
  error: string | null;
  started: string;
  durationMs: number | null;
  params: Record<string, JsonValue>;
  metrics: Record<string, number>;
  /** The sweep the run belongs to (engine/sweeps/), or null. */
  sweep: string | null;
}

/** Flattens nested objects to `a.b.c` leaves (arrays stay whole: they are one value, e.g. a size). */
export function flatten(value: JsonValue | undefined, prefix = '', out: Record<string, JsonValue> = {}): Record<string, JsonValue> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix === '' ? k : `${prefix}.${k}`, out);
  } else if (value !== undefined && prefix !== '') {
    out[prefix] = value;
  }
  return out;
}

function numericLeaves(value: JsonValue | undefined): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [k, v] of Object.entries(flatten(value))) if (typeof v === 'number' && Number.isFinite(v)) result[k] = v;
  return result;
}

/** Metric kinds worth a column in `flow runs`, in column order. */
const KEY_METRIC_KINDS = ['dice', 'hd95', 'iou', 'loss', 'accuracy', 'error', 'sensitivity', 'specificity'];

function metricKind(name: string): number {
  const leaf = name.split('.').at(-1)!.toLowerCase();
  // `dice`, `WT_dice`, `val_loss`: the kind is the name or its last `_` part (not `global_dice`'s pooled Dice).
  return KEY_METRIC_KINDS.findIndex((k) => leaf === k || (leaf.endsWith(`_${k}`) && !leaf.endsWith(`global_${k}`)));
}

/**
 * The metrics worth a column, at most `max`: top-level names of a well-known kind (dice, hd95, iou, loss, ...;
 * with a group prefix such as `WT_dice` too), ordered by kind; nested ones (`regions.car.mean.dice`, which
 * repeat the top-level numbers) only when no top-level name qualifies; else the first names.
 */
export function keyMetrics(metrics: Record<string, number>, max = 6): string[] {
  const names = Object.keys(metrics).filter((n) => !n.startsWith('definitions.'));
  const byKind = (list: string[]): string[] =>
    list
      .map((n, i) => ({ n, i, kind: metricKind(n) }))
      .filter((x) => x.kind >= 0)
      .sort((x, y) => x.kind - y.kind || x.i - y.i)
      .map((x) => x.n);
  const topLevel = byKind(names.filter((n) => !n.includes('.')));
  const chosen = topLevel.length > 0 ? topLevel : byKind(names.filter((n) => !/per[_-]?(case|sample)|\.\d+\./.test(n)));
  return (chosen.length > 0 ? chosen : names).slice(0, max);
}

async function readParams(runDir: string): Promise<JsonObject> {
  const file = path.join(runDir, 'config.yaml');
  if (!fs.existsSync(file)) return {};
  const { parse } = await import('yaml');
  const config = parse(fs.readFileSync(file, 'utf8')) as JsonObject | null;
  const params = config?.params;
  return typeof params === 'object' && params !== null && !Array.isArray(params) ? params : {};
}

export async function summarizeRun(runDir: string): Promise<RunSummary> {
  const state = readRunState(runDir);
  if (!state) throw new Error(`${runDir}: no state.json; not a run folder`);
  // The definitions block's numbers (a threshold) describe the metrics; they are no metric themselves.
  const metrics = Object.fromEntries(Object.entries(numericLeaves(readJsonIfExists<JsonValue>(path.join(runDir, 'metrics.json')))).filter(([k]) => !k.startsWith('definitions.')));
  const started = state.started;
  const durationMs = state.ended ? Date.parse(state.ended) - Date.parse(started) : null;
  const stopped = state.status === 'failed' || state.status === 'interrupted' ? state.order.find((n) => state.stages[n]?.status === state.status) ?? null : null;
  const error = stopped ? state.stages[stopped]?.error ?? null : null;
  return { runId: state.runId, pipeline: state.pipeline, runDir, status: state.status, stoppedAt: stopped, error, started, durationMs, params: flatten(await readParams(runDir)), metrics, sweep: null };
}

function valueText(v: JsonValue | undefined): string {
  return v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** Params whose value differs between the given runs. */
export function differingParams(runs: RunSummary[]): string[] {
  const names = new Set(runs.flatMap((r) => Object.keys(r.params)));
  return [...names].filter((n) => new Set(runs.map((r) => valueText(r.params[n]))).size > 1).sort();
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

function duration(ms: number | null): string {
  return ms === null ? '—' : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** Every run's summary; one whose state.json cannot be read is listed as `unreadable` with the reason. */
export async function listRunSummaries(runsDir: string, pipeline?: string): Promise<RunSummary[]> {
  const runs = listRuns(runsDir, pipeline);
  const summaries = await Promise.all(
    runs.map((r) =>
      summarizeRun(r.runDir).catch((err: unknown): RunSummary => ({
        runId: r.runId,
        pipeline: r.pipeline,
        runDir: r.runDir,
        status: 'unreadable',
        stoppedAt: null,
        error: `${(err as Error).message}`,
        started: '',
        durationMs: null,
        params: {},
        metrics: {},
        sweep: null,
      })),
    ),
  );
  const { listSweeps, readManifest } = await import('./sweeps/manifest.js');
  const sweepOf = new Map<string, string>();
  for (const s of listSweeps(runsDir, pipeline)) {
    try {
      for (const m of readManifest(s.sweepDir).members) if (m.runId !== null) sweepOf.set(`${s.pipeline}/${m.runId}`, s.sweepId);
    } catch {
      // a damaged sweep.json: its runs are listed as plain runs
    }
  }
  for (const r of summaries) r.sweep = sweepOf.get(`${r.pipeline}/${r.runId}`) ?? null;
  return summaries;
}

/** A cell no wider than `max` characters: long values keep their start and end (paths differ at the end). */
export function clip(text: string, max = 28): string {
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}

function metricCell(v: number | undefined): string {
  if (v === undefined) return '—';
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toFixed(4);
}

/** A table's column: its header, its cells, and how readily it is hidden when the terminal is narrow. */
interface Column {
  header: string;
  cells: string[];
  /** Lower goes first; id and status (Infinity) always stay. */
  keep: number;
  /** Param and metric columns may be narrowed (their cells and header clipped) before any is hidden. */
  clippable: boolean;
}

function renderColumns(columns: Column[], clipAt: number): string[] {
  const shown = columns.map((c) => (c.clippable ? { header: clip(c.header, clipAt), cells: c.cells.map((x) => clip(x, clipAt)) } : c));
  const widths = shown.map((c) => Math.max(c.header.length, ...c.cells.map((x) => x.length)));
  const line = (cells: string[]): string => cells.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  const rows = shown[0]!.cells.map((_, r) => line(shown.map((c) => c.cells[r]!)));
  return [line(shown.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...rows];
}

/**
 * Fits a table into `width` characters: param and metric cells are narrowed first (28, then 16, then 10
 * characters), then the least needed columns are hidden (started, duration, params that are not swept, later
 * metrics, ...); the hidden ones are named below the table.
 */
function fitColumns(columns: Column[], width: number): string {
  let visible = [...columns];
  const hidden: string[] = [];
  const widest = (lines: string[]): number => Math.max(...lines.map((l) => l.length));
  for (;;) {
    let lines: string[] = [];
    for (const clipAt of [28, 16, 10]) {
      lines = renderColumns(visible, clipAt);
      if (widest(lines) <= width) break;
    }
    const droppable = visible.filter((c) => c.keep !== Infinity);
    if (widest(lines) <= width || droppable.length === 0) {
      const note = hidden.length ? `(not shown to fit ${width} columns: ${hidden.join(', ')}; widen the terminal or use --json)\n` : '';
      return lines.join('\n') + '\n' + note;
    }
    const drop = droppable.reduce((lo, c) => (c.keep < lo.keep ? c : lo));
    hidden.push(drop.header);
    visible = visible.filter((c) => c !== drop);
  }
}

/** Runs grouped the way `flow runs` prints them: by pipeline, and each sweep apart; first-started group first. */
export function groupRuns(runs: RunSummary[]): { pipeline: string; sweep: string | null; runs: RunSummary[] }[] {
  const groups = new Map<string, { pipeline: string; sweep: string | null; runs: RunSummary[] }>();
  for (const r of runs) {
    const key = `${r.pipeline}\u0000${r.sweep ?? ''}`;
    if (!groups.has(key)) groups.set(key, { pipeline: r.pipeline, sweep: r.sweep, runs: [] });
    groups.get(key)!.runs.push(r);
  }
  return [...groups.values()];
}

function statusCounts(runs: RunSummary[]): string {
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

/**
 * `flow runs`: one table per group (a pipeline's runs outside sweeps, each sweep apart), each with only the
 * params that differ within the group and the group's key metrics, fitted to `width` columns.
 * `sweptKeys` (sweep id → swept params) puts a sweep's swept params first and keeps them longest.
 */
export function formatRunsTable(runs: RunSummary[], width = 160, sweptKeys: Record<string, string[]> = {}): string {
  if (runs.length === 0) return 'no runs\n';
  const blocks: string[] = [];
  for (const group of groupRuns(runs)) {
    const swept = group.sweep ? sweptKeys[group.sweep] ?? [] : [];
    const differing = differingParams(group.runs);
    const params = [...swept.filter((k) => differing.includes(k)), ...differing.filter((k) => !swept.includes(k))];
    const metrics = keyMetrics(Object.assign({}, ...group.runs.map((r) => r.metrics)) as Record<string, number>);
    const title = `${group.pipeline}${group.sweep ? ` · ${group.sweep}` : ''}  (${group.runs.length} run${group.runs.length === 1 ? '' : 's'}: ${statusCounts(group.runs)}${swept.length ? `; swept ${swept.join(' × ')}` : ''})`;
    const columns: Column[] = [
      { header: 'id', cells: group.runs.map((r) => r.runId), keep: Infinity, clippable: false },
      { header: 'status', cells: group.runs.map((r) => (r.stoppedAt ? `${r.status} at ${r.stoppedAt}` : r.status)), keep: Infinity, clippable: false },
      { header: 'started', cells: group.runs.map((r) => r.started.replace('T', ' ').slice(0, 19)), keep: 0, clippable: false },
      { header: 'duration', cells: group.runs.map((r) => (r.status === 'running' ? 'running' : duration(r.durationMs))), keep: 1, clippable: false },
      // Swept params stay longest, then the first three metrics, then the other differing params, then the
      // remaining metrics; started and duration go first.
      ...params.map((p, i) => ({ header: p, cells: group.runs.map((r) => valueText(r.params[p])), keep: swept.includes(p) ? 1000 - i : 50 - i / 1000, clippable: true })),
      ...metrics.map((m, i) => ({ header: m, cells: group.runs.map((r) => metricCell(r.metrics[m])), keep: i < 3 ? 100 - i : 20 - i, clippable: true })),
    ];
    const notes: string[] = [];
    if (params.length === 0 && group.runs.length > 1) notes.push('(all runs have the same params)');
    for (const r of group.runs.filter((x) => x.error !== null)) {
      // The reason matters more than the width: a note line may wrap, but keeps at least 200 characters of it.
      const why = clip(r.error!.split('\n')[0]!, Math.max(200, width - r.runId.length - 20));
      notes.push(r.status === 'unreadable' ? `${r.runId}: state.json unreadable: ${why}` : `${r.runId}: ${r.stoppedAt} failed: ${why}`);
    }
    const resumable = group.runs.filter((r) => r.status === 'interrupted' || (r.status === 'failed' && r.error === null));
    if (resumable.length > 0) notes.push(`continue ${group.sweep ? 'the sweep' : 'a stopped run'} with: flow resume ${group.sweep ?? resumable.at(-1)!.runId}`);
    blocks.push(`${clip(title, width)}\n${fitColumns(columns, width)}${notes.length ? notes.join('\n') + '\n' : ''}`);
  }
  return blocks.join('\n');
}

/** The swept params of every sweep under runsDir, for formatRunsTable. */
export function sweptKeysOf(runsDir: string, pipeline?: string): Promise<Record<string, string[]>> {
  return import('./sweeps/manifest.js').then(({ listSweeps, readManifest }) => {
    const out: Record<string, string[]> = {};
    for (const s of listSweeps(runsDir, pipeline)) {
      try {
        out[s.sweepId] = readManifest(s.sweepDir).keys;
      } catch {
        // damaged: no swept keys known
      }
    }
    return out;
  });
}

export interface ShowResult {
  runId: string;
  pipeline: string;
  runDir: string;
  status: string;
  file: string;
  overrides: string[];
  started: string;
  ended: string | null;
  params: JsonObject;
  stages: RunState['stages'];
  metrics: JsonValue | null;
  files: Record<string, string>;
  /** Deleted or broken stages/ links found (and restored where their entry exists). */
  links: string[];
}

export async function showRun(runDir: string): Promise<ShowResult> {
  const state = readRunState(runDir);
  if (!state) throw new Error(`${runDir}: no state.json; not a run folder`);
  const links = checkStageLinks(runDir, state).length > 0 ? repairStageLinks(runDir, state).lines : [];
  const files: Record<string, string> = {};
  for (const name of ['config.yaml', 'overrides.txt', 'env.json', 'state.json', 'log.ndjson', 'metrics.json', 'report.html']) {
    if (fs.existsSync(path.join(runDir, name))) files[name] = path.join(runDir, name);
  }
  for (const stage of state.order) {
    const link = path.join(runDir, 'stages', stage);
    if (fs.existsSync(link)) files[`stages/${stage}`] = fs.realpathSync(link);
  }
  return {
    runId: state.runId,
    pipeline: state.pipeline,
    runDir,
    status: state.status,
    file: state.file,
    overrides: state.overrides,
    started: state.started,
    ended: state.ended,
    params: await readParams(runDir),
    stages: state.stages,
    metrics: readJsonIfExists<JsonValue>(path.join(runDir, 'metrics.json')) ?? null,
    files,
    links,
  };
}

export function formatShow(s: ShowResult): string {
  const lines = [`run ${s.runId}  (${s.pipeline}, ${s.status})`, `pipeline file: ${s.file}`, `overrides: ${s.overrides.length ? s.overrides.join(' ') : '(none)'}`, `started ${s.started}${s.ended ? `, ended ${s.ended}` : ''}`, '', 'params:'];
  for (const [k, v] of Object.entries(flatten(s.params))) lines.push(`  ${k} = ${valueText(v)}`);
  lines.push('', 'stages:');
  const rows = Object.entries(s.stages).map(([name, st]) => [name, st.status, st.cached ? 'cached' : st.status === 'done' ? 'ran' : '', duration(st.durationMs), st.key ? st.key.slice(0, 12) : '', st.error ?? st.reason.join('; ')]);
  lines.push(table(['stage', 'status', 'cache', 'duration', 'key', 'reason / error'], rows).trimEnd().replace(/^/gm, '  '));
  if (s.metrics !== null) {
    lines.push('', 'metrics:');
    for (const [k, v] of Object.entries(numericLeaves(s.metrics))) lines.push(`  ${k} = ${v}`);
  }
  lines.push('', 'files:');
  for (const [k, v] of Object.entries(s.files)) lines.push(`  ${k}: ${v}`);
  if (s.links.length > 0) lines.push('', 'stage links:', ...s.links.map((l) => `  ${l}`));
  return lines.join('\n') + '\n';
}

export interface DiffResult {
  a: string;
  b: string;
  pipelineA: string;
  pipelineB: string;
  runDirA: string;
  runDirB: string;
  params: { name: string; old: JsonValue | null; new: JsonValue | null }[];
  /**
   * Metrics whose value differs. `lowerIsBetter` marks hd/loss/error/distance metrics (a negative delta is
   * an improvement; `better`/`worse` below say which way each went); delta is null when a value is missing or, with `note`, when the
   * metric's definition differs between the runs.
   */
  metrics: { name: string; old: number | null; new: number | null; delta: number | null; lowerIsBetter?: true; note?: string; sameAs?: string }[];
  /** Names of the compared metrics that improved / got worse (direction-aware). */
  better: string[];
  worse: string[];
  /** Entries of metrics.json's `definitions` block that differ between the runs. */
  definitions: { name: string; old: JsonValue | null; new: JsonValue | null }[];
  /** `not-done`: B did not finish the stage (failed, interrupted, or never reached); reason says which. */
  stages: { name: string; change: 'cached-in-both' | 'same-key' | 'rerun' | 'not-done' | 'only-in-a' | 'only-in-b'; keyA: string | null; keyB: string | null; reason: string[] }[];
  /** Set when a run has no metrics.json (it failed or stopped before writing one): no metric is compared. */
  missingMetrics?: ('a' | 'b')[];
  /** Per-case tables of metrics.json matched by path and case id. */
  cases: PerCaseComparison;
  /** Set when A and B are one run folder: nothing can differ. */
  sameRun?: true;
}

function definitionsOf(metrics: JsonValue | undefined): JsonObject | undefined {
  const defs = typeof metrics === 'object' && metrics !== null && !Array.isArray(metrics) ? metrics.definitions : undefined;
  return typeof defs === 'object' && defs !== null && !Array.isArray(defs) ? defs : undefined;
}

export async function diffRuns(runDirA: string, runDirB: string): Promise<DiffResult> {
  const [a, b] = await Promise.all([summarizeRun(runDirA), summarizeRun(runDirB)]);
  const sa = readRunState(runDirA)!;
  const sb = readRunState(runDirB)!;
  const rawA = readJsonIfExists<JsonValue>(path.join(runDirA, 'metrics.json'));
  const rawB = readJsonIfExists<JsonValue>(path.join(runDirB, 'metrics.json'));
  const defsA = definitionsOf(rawA);
  const defsB = definitionsOf(rawB);
  const params = differingParams([a, b]).map((name) => ({ name, old: a.params[name] ?? null, new: b.params[name] ?? null }));
  // The definitions block describes the numbers; its own numeric leaves (a threshold) are no metric.
  const isMetric = (name: string): boolean => !name.startsWith('definitions.');
  // A run without metrics.json stopped early: listing every metric as "→ —" would only hide that.
  const missingMetrics = [...(rawA === undefined ? ['a' as const] : []), ...(rawB === undefined ? ['b' as const] : [])];
  const metricNames = missingMetrics.length > 0 ? [] : [...new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])].filter(isMetric).sort();
  const metrics: DiffResult['metrics'] = metricNames
    .map((name) => {
      const o = a.metrics[name] ?? null;
      const n = b.metrics[name] ?? null;
      const tablePath = name.split('.').slice(0, -1).join('.');
      if (o !== null && n !== null && !sameDefinition(definitionOf(defsA, name, tablePath), definitionOf(defsB, name, tablePath))) {
        return { name, old: o, new: n, delta: null, ...(lowerIsBetter(name) ? { lowerIsBetter: true as const } : {}), note: 'definition differs between the runs; not compared' };
      }
      const delta = o !== null && n !== null ? n - o : null;
      return { name, old: o, new: n, delta, ...(lowerIsBetter(name) ? { lowerIsBetter: true as const } : {}) };
    })
    .filter((m) => m.old !== m.new);
  // Nested metrics that repeat a top-level one exactly in both runs (regions.WT.mean.dice = WT_dice) are
  // marked, so the text and the page list each number once.
  const topLevel = metrics.filter((m) => !m.name.includes('.'));
  for (const m of metrics) {
    if (!m.name.includes('.') || m.old === null || m.new === null) continue;
    const parts = m.name.split('.');
    const leaf = parts.at(-1)!;
    // Same numbers in both runs and the same metric name (`hd95`, `WT_hd95`); a name that also carries one of
    // the path's segments (`WT`) wins over a bare one.
    const twins = topLevel.filter((t) => t.old === m.old && t.new === m.new && (t.name === leaf || t.name.endsWith(`_${leaf}`)));
    const twin = twins.find((t) => parts.slice(0, -1).some((p) => t.name.startsWith(`${p}_`))) ?? twins.find((t) => t.name === leaf);
    if (twin) m.sameAs = twin.name;
  }
  const definitions = (defsA === undefined || defsB === undefined ? [] : Object.entries(flatten(defsA ?? {}))
    .concat(Object.entries(flatten(defsB ?? {})))
    .map(([name]) => name)
    .filter((name, i, all) => all.indexOf(name) === i)
    .map((name) => ({ name, old: flatten(defsA ?? {})[name] ?? null, new: flatten(defsB ?? {})[name] ?? null }))
    .filter((d) => JSON.stringify(d.old) !== JSON.stringify(d.new)));
  const stageNames = [...new Set([...sa.order, ...sb.order])];
  const stages: DiffResult['stages'] = stageNames.map((name) => {
    const x = sa.stages[name];
    const y = sb.stages[name];
    if (!x) return { name, change: 'only-in-b', keyA: null, keyB: y?.key ?? null, reason: [] };
    if (!y) return { name, change: 'only-in-a', keyA: x.key, keyB: null, reason: [] };
    if (y.status !== 'done') {
      const why = y.status === 'pending' ? 'not reached' : `${y.status}${y.error ? `: ${y.error.split('\n')[0]}` : ''}`;
      return { name, change: 'not-done', keyA: x.key, keyB: y.key, reason: [why] };
    }
    if (x.key === y.key) return { name, change: x.cached && y.cached ? 'cached-in-both' : 'same-key', keyA: x.key, keyB: y.key, reason: y.cached ? [] : y.reason };
    return { name, change: 'rerun', keyA: x.key, keyB: y.key, reason: y.reason };
  });
  const direction = (m: DiffResult['metrics'][number]): number => (m.delta === null ? 0 : improvementOf(m.name, m.delta));
  const better = metrics.filter((m) => direction(m) > 0).map((m) => m.name);
  const worse = metrics.filter((m) => direction(m) < 0).map((m) => m.name);
  const sameRun = fs.realpathSync(runDirA) === fs.realpathSync(runDirB);
  return { a: a.runId, b: b.runId, ...(sameRun ? { sameRun: true as const } : {}), ...(missingMetrics.length ? { missingMetrics } : {}), better, worse, pipelineA: a.pipeline, pipelineB: b.pipeline, runDirA, runDirB, params, metrics, definitions, stages, cases: compareCases(rawA, rawB) };
}

function signedDelta(m: DiffResult['metrics'][number]): string {
  if (m.note) return ` (${m.note})`;
  if (m.delta === null) return '';
  const improvement = improvementOf(m.name, m.delta);
  const verdict = improvement > 0 ? 'better' : improvement < 0 ? 'worse' : 'same';
  return ` (${m.delta >= 0 ? '+' : ''}${m.delta.toPrecision(4)}, ${verdict})`;
}

function metricValue(v: number | null): string {
  return v === null ? '—' : Number.isInteger(v) ? String(v) : v.toPrecision(6);
}

export function formatDiff(d: DiffResult): string {
  if (d.sameRun) return `diff ${d.a} → ${d.b}: the same run (${d.runDirA}); nothing differs. Give two different runs (see \`flow runs\`).\n`;
  const lines = [`diff ${d.a} → ${d.b}${d.pipelineA !== d.pipelineB ? `  (pipelines ${d.pipelineA} → ${d.pipelineB})` : ''}`, '', 'params:'];
  if (d.params.length === 0) lines.push('  (no differences)');
  for (const p of d.params) lines.push(`  ${p.name}: ${valueText(p.old ?? undefined)} → ${valueText(p.new ?? undefined)}`);
  lines.push('', 'metrics:');
  for (const side of d.missingMetrics ?? []) lines.push(`  run ${side === 'a' ? d.a : d.b} (${side.toUpperCase()}) has no metrics.json (${side === 'a' ? 'A' : 'B'} stopped before writing one); metrics not compared`);
  if (d.metrics.length === 0 && !d.missingMetrics) lines.push('  (no differences)');
  for (const m of d.metrics) if (m.sameAs === undefined) lines.push(`  ${m.name}: ${metricValue(m.old)} → ${metricValue(m.new)}${signedDelta(m)}`);
  const repeated = d.metrics.filter((m) => m.sameAs !== undefined).length;
  if (repeated > 0) lines.push(`  (${repeated} nested metric${repeated === 1 ? '' : 's'} with the same values as the ones above not repeated; --json lists all)`);
  if (d.definitions.length > 0) {
    lines.push('', 'metric definitions that differ:');
    for (const x of d.definitions) lines.push(`  ${x.name}: ${valueText(x.old ?? undefined)} → ${valueText(x.new ?? undefined)}`);
  }
  lines.push('', 'stages:');
  for (const s of d.stages) {
    const what =
      s.change === 'rerun'
        ? `re-ran: ${s.reason.join('; ') || 'key changed'}`
        : s.change === 'cached-in-both'
          ? 'cached in both'
          : s.change === 'same-key'
            ? s.reason.length === 0
              ? 'unchanged (B reused the same result)'
              : `same key, computed again in B: ${s.reason.join('; ')}`
            : s.change === 'not-done'
              ? `not done in B: ${s.reason.join('; ')}`
              : s.change === 'only-in-a'
              ? 'only in A'
              : 'only in B';
    lines.push(`  ${s.name}: ${what}`);
  }
  lines.push('', 'per case:');
  lines.push(formatCaseComparison(d.cases).trimEnd());
  return lines.join('\n') + '\n';
}

/** Writes `flow diff --html`'s page (temp + rename); the default file is runs/<pipeline of B>/diff-<A>-<B>.html. */
export function writeDiffHtml(d: DiffResult, file: string): string {
  writeFileAtomic(file, renderDiffHtml(d, d.runDirA, d.runDirB));
  return file;
}

export function defaultDiffHtmlPath(d: DiffResult): string {
  return path.join(path.dirname(d.runDirB), `diff-${d.a}-${d.b}.html`);
}

export interface GcResult {
  removed: { path: string; bytes: number }[];
  kept: number;
  bytes: number;
  /** Run folders whose state.json could not be read (their keys are not protected). */
  warnings: string[];
}

/**
 * Deletes cache entries and checkpoints that no run folder under runsDir references, damaged and incomplete
 * entries, abandoned temp folders and stale locks. Crash-safe: everything is renamed into trash/ before it
 * is deleted, so a SIGKILL leaves whole entries or none, and the next gc (or run) empties the trash.
 */
export function collectGarbage(cacheDir: string, runsDir: string, dryRun: boolean): GcResult {
  const cache = new Cache(cacheDir);
  const referenced = new Set<string>();
  const warnings: string[] = [];
  for (const r of listRuns(runsDir)) {
    let state: RunState | undefined;
    try {
      state = readRunState(r.runDir);
    } catch (err) {
      warnings.push(`${r.runDir}: ${(err as Error).message}; its cache entries are not kept for it`);
      continue;
    }
    for (const s of Object.values(state?.stages ?? {})) if (s.key) referenced.add(s.key);
  }
  const removed: GcResult['removed'] = [];
  let kept = 0;
  const drop = (p: string): void => {
    removed.push({ path: p, bytes: sizeOfPath(p) });
    if (!dryRun) cache.moveToTrash(p);
  };
  const list = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
  const trash = path.join(cacheDir, 'trash');
  for (const name of list(trash)) {
    removed.push({ path: path.join(trash, name), bytes: sizeOfPath(path.join(trash, name)) });
    if (!dryRun) fs.rmSync(path.join(trash, name), { recursive: true, force: true });
  }
  for (const key of list(path.join(cacheDir, 'entries'))) {
    const dir = path.join(cacheDir, 'entries', key);
    // A folder without entry.json is incomplete (a crash mid-delete of an older flow): never an entry.
    if (referenced.has(key) && fs.existsSync(path.join(dir, 'entry.json'))) kept += 1;
    else drop(dir);
  }
  for (const name of list(path.join(cacheDir, 'damaged'))) drop(path.join(cacheDir, 'damaged', name));
  for (const name of list(path.join(cacheDir, 'checkpoints'))) {
    const key = name.replace(/\.(fingerprint\.)?json$/, '');
    if (!referenced.has(key)) drop(path.join(cacheDir, 'checkpoints', name));
  }
  // Locks: a stale one is removed; a held one protects its key's temp folders and command record.
  const locksDir = path.join(cacheDir, 'locks');
  const live = new Set<string>();
  for (const name of list(locksDir)) {
    const file = path.join(locksDir, name);
    if (name.endsWith('.lock')) {
      const status = inspectLock(file);
      if (status.state === 'held') live.add(name.slice(0, -'.lock'.length));
      else if (status.state === 'stale') drop(file);
    } else if (isAbandonedTemp(locksDir, name)) drop(file);
  }
  for (const name of list(locksDir)) {
    const m = /^(.+)\.command\.json$/.exec(name);
    if (m && !live.has(m[1]!)) drop(path.join(locksDir, name));
  }
  // Temp folders whose key is not locked by a live process belong to processes that are gone.
  for (const name of list(path.join(cacheDir, 'tmp'))) {
    const key = name.replace(/^trash-/, '').replace(/-[0-9a-f]{12}$/, '');
    if (!live.has(key)) drop(path.join(cacheDir, 'tmp', name));
  }
  for (const name of list(cacheDir)) if (isAbandonedTemp(cacheDir, name)) drop(path.join(cacheDir, name));
  // Run folders: temp files of killed writers, and folders a run was killed in before its state.json.
  for (const r of listRuns(runsDir)) for (const name of list(r.runDir)) if (isAbandonedTemp(r.runDir, name)) drop(path.join(r.runDir, name));
  for (const dir of abandonedRunDirs(runsDir)) drop(dir);
  return { removed, kept, bytes: removed.reduce((n, r) => n + r.bytes, 0), warnings };
}

export interface VerifyResult {
  checked: number;
  bytes: number;
  /** Entries whose files no longer match their manifest (moved to damaged/; the next run recomputes them). */
  damaged: { key: string; stage: string; problem: string }[];
  /** Entries a run refers to that are not in the cache at all. */
  missing: string[];
}

/**
 * Re-reads every file of the given entries (all when `keys` is null) and checks it against the entry's
 * manifest: the full check that a cache hit's metadata check stands for. Damaged entries are moved aside.
 */
export async function verifyEntries(cacheDir: string, keys: string[] | null, progress?: (line: string) => void): Promise<VerifyResult> {
  const cache = new Cache(cacheDir);
  const entriesDir = path.join(cacheDir, 'entries');
  const all = keys ?? (fs.existsSync(entriesDir) ? fs.readdirSync(entriesDir).sort() : []);
  const result: VerifyResult = { checked: 0, bytes: 0, damaged: [], missing: [] };
  for (const key of all) {
    if (!fs.existsSync(cache.entryDir(key))) {
      // Asked for by a run (keys given): its result is gone; with --all there is nothing to check.
      if (keys !== null) {
        result.missing.push(key);
        progress?.(`missing: ${key.slice(0, 12)}: the entry is gone (deleted by gc or found damaged earlier); \`flow resume\` recomputes it`);
      }
      continue;
    }
    const entry = cache.readEntry(key);
    const problem = entry ? await cache.checkEntry(entry, null) : 'entry.json is missing or unreadable';
    result.checked += 1;
    result.bytes += entry ? Object.values(entry.outputs).reduce((n, o) => n + o.size, 0) : 0;
    if (problem !== null) {
      const reason = cache.quarantine(key, problem);
      result.damaged.push({ key, stage: entry?.stage ?? '?', problem: reason });
      progress?.(`damaged: ${key.slice(0, 12)} (stage ${entry?.stage ?? '?'}): ${reason}`);
    }
  }
  return result;
}

/** The keys of a run's finished stages (what `flow verify RUN` checks). */
export function runEntryKeys(runDir: string): string[] {
  const state = readRunState(runDir);
  if (!state) throw new Error(`${runDir}: no state.json; not a run folder`);
  return state.order.map((n) => state.stages[n]).filter((s) => s?.status === 'done' && s.key).map((s) => s!.key!);
}

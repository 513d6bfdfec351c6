// Per-case comparison of two runs and the `flow diff --html` page. The engine knows nothing about images or
// models, so this works from generic facts of run folders: in metrics.json, any array of objects with an `id`
// and numeric fields is a table of cases (evaluate writes `regions.<R>.per_case`); the `definitions` block says
// what each metric means; the config snapshot's `report:` list names outputs whose image files are named
// after the case they show.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { JsonObject, JsonValue } from './stage.js';
import { readJsonIfExists } from './fs-util.js';
import { escapeHtml, fileType, findCaseTables, formatNumber, imageTag, isJsonObject, reportReferences, REPORT_STYLE, type CaseTable } from './report.js';

export { findCaseTables, type CaseTable };

/** Metric names where a smaller value is the better one (distances, losses, errors). */
const LOWER_IS_BETTER = /hd|loss|error|distance/i;

export function lowerIsBetter(metric: string): boolean {
  return LOWER_IS_BETTER.test(metric);
}

/** Signed so that a positive number is always an improvement. */
export function improvementOf(metric: string, delta: number): number {
  return lowerIsBetter(metric) ? -delta : delta;
}

function stable(value: JsonValue | undefined): string {
  if (value === undefined) return '(none)';
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (isJsonObject(value)) return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stable(value[k])}`).join(',')}}`;
  return JSON.stringify(value);
}

/**
 * The definition of one metric: `definitions[name]` plus its qualifiers (`definitions[name_*]`, e.g.
 * `hd95_units`), and, for a metric inside a table at `a.b.c`, any `definitions.a.b` entry (e.g.
 * `definitions.regions.WT`: which labels the region is). A name with a group prefix (`WT_dice`) falls back to
 * the bare name (`dice`). Undefined when the block says nothing about it.
 */
export function definitionOf(definitions: JsonValue | undefined, metric: string, tablePath = ''): JsonObject | undefined {
  if (!isJsonObject(definitions)) return undefined;
  const leaf = metric.split('.').at(-1)!;
  let name = leaf;
  while (!(name in definitions) && name.includes('_')) name = name.slice(name.indexOf('_') + 1);
  if (!(name in definitions)) name = leaf;
  const found: JsonObject = {};
  for (const [k, v] of Object.entries(definitions)) if (k === name || k.startsWith(`${name}_`)) found[k] = v;
  const parts = tablePath.split('.').filter(Boolean);
  for (let i = 0; i + 1 < parts.length; i++) {
    const scope = definitions[parts[i]!];
    if (isJsonObject(scope) && parts[i + 1]! in scope) found[`${parts[i]}.${parts[i + 1]}`] = scope[parts[i + 1]!]!;
  }
  return Object.keys(found).length > 0 ? found : undefined;
}

/** Whether a metric means the same in both runs (both undefined counts as the same). */
export function sameDefinition(a: JsonObject | undefined, b: JsonObject | undefined): boolean {
  return stable(a) === stable(b);
}

export interface MetricChange {
  old: number;
  new: number;
  delta: number;
  /** delta signed so that positive is better (lower-is-better metrics flipped). */
  improvement: number;
}

export interface CaseComparison {
  id: string;
  /** The table's primary metric (its first comparable field), by which cases are ranked. */
  metric: string;
  improvement: number;
  verdict: 'better' | 'worse' | 'same';
  changes: Record<string, MetricChange>;
}

export interface TableComparison {
  path: string;
  group: string;
  /** Fields compared (defined alike in both runs), primary first. */
  metrics: string[];
  /** Fields whose definition differs between the runs: no delta is given for them. */
  redefined: { metric: string; a: JsonObject | null; b: JsonObject | null }[];
  onlyInA: string[];
  onlyInB: string[];
  better: number;
  worse: number;
  same: number;
  /** Every matched case, largest change of the primary metric first (better and worse alike). */
  cases: CaseComparison[];
}

export interface PerCaseComparison {
  tables: TableComparison[];
  /** Tables present in only one of the runs (by path). */
  onlyInA: string[];
  onlyInB: string[];
}

/**
 * Which fields of a table are metrics: with a definitions block, the fields it defines (counts such as
 * `tp`/`fp` have no definition and would be ranked the wrong way up); without one, every numeric field.
 */
function metricFields(table: CaseTable, definitions: JsonValue | undefined): string[] {
  if (!isJsonObject(definitions)) return table.fields;
  return table.fields.filter((f) => definitionOf(definitions, f) !== undefined);
}

/** Matches the case tables of two metrics.json documents by path and their cases by id. */
export function compareCases(metricsA: JsonValue | undefined, metricsB: JsonValue | undefined, epsilon = 1e-12): PerCaseComparison {
  const defsA = isJsonObject(metricsA) ? metricsA.definitions : undefined;
  const defsB = isJsonObject(metricsB) ? metricsB.definitions : undefined;
  const tablesA = findCaseTables(metricsA);
  const tablesB = new Map(findCaseTables(metricsB).map((t) => [t.path, t]));
  const pathsA = new Set(tablesA.map((t) => t.path));
  const result: PerCaseComparison = { tables: [], onlyInA: tablesA.filter((t) => !tablesB.has(t.path)).map((t) => t.path), onlyInB: [...tablesB.keys()].filter((p) => !pathsA.has(p)) };
  for (const ta of tablesA) {
    const tb = tablesB.get(ta.path);
    if (!tb) continue;
    const fieldsB = new Set(metricFields(tb, defsB));
    const candidates = metricFields(ta, defsA).filter((f) => fieldsB.has(f));
    const redefined: TableComparison['redefined'] = [];
    const metrics: string[] = [];
    for (const f of candidates) {
      const a = definitionOf(defsA, f, ta.path);
      const b = definitionOf(defsB, f, ta.path);
      if (sameDefinition(a, b)) metrics.push(f);
      else redefined.push({ metric: f, a: a ?? null, b: b ?? null });
    }
    const primary = metrics[0];
    const cases: CaseComparison[] = [];
    for (const [id, va] of ta.cases) {
      const vb = tb.cases.get(id);
      if (!vb || primary === undefined) continue;
      const changes: Record<string, MetricChange> = {};
      for (const m of metrics) {
        if (va[m] === undefined || vb[m] === undefined) continue;
        const delta = vb[m]! - va[m]!;
        changes[m] = { old: va[m]!, new: vb[m]!, delta, improvement: improvementOf(m, delta) };
      }
      const main = changes[primary];
      if (!main) continue;
      const verdict = main.improvement > epsilon ? 'better' : main.improvement < -epsilon ? 'worse' : 'same';
      cases.push({ id, metric: primary, improvement: main.improvement, verdict, changes });
    }
    cases.sort((x, y) => Math.abs(y.improvement) - Math.abs(x.improvement) || (x.id < y.id ? -1 : 1));
    result.tables.push({
      path: ta.path,
      group: ta.group,
      metrics,
      redefined,
      onlyInA: [...ta.cases.keys()].filter((id) => !tb.cases.has(id)),
      onlyInB: [...tb.cases.keys()].filter((id) => !ta.cases.has(id)),
      better: cases.filter((c) => c.verdict === 'better').length,
      worse: cases.filter((c) => c.verdict === 'worse').length,
      same: cases.filter((c) => c.verdict === 'same').length,
      cases,
    });
  }
  return result;
}

/** Case ids ranked by their largest change in any table, most changed first (each id once). */
export function mostChangedCases(comparison: PerCaseComparison): { id: string; improvement: number; group: string; metric: string }[] {
  const best = new Map<string, { id: string; improvement: number; group: string; metric: string }>();
  for (const t of comparison.tables) {
    for (const c of t.cases) {
      const prior = best.get(c.id);
      if (!prior || Math.abs(c.improvement) > Math.abs(prior.improvement)) best.set(c.id, { id: c.id, improvement: c.improvement, group: t.group, metric: c.metric });
    }
  }
  return [...best.values()].sort((x, y) => Math.abs(y.improvement) - Math.abs(x.improvement) || (x.id < y.id ? -1 : 1));
}

function signed(n: number): string {
  const text = Math.abs(n) >= 1e-3 || n === 0 ? n.toFixed(4) : n.toExponential(2);
  return n > 0 ? `+${text}` : text;
}

/** The per-case part of `flow diff`'s text: per table, the cases that got better and worse, biggest first. */
export function formatCaseComparison(comparison: PerCaseComparison, limit = 10): string {
  const lines: string[] = [];
  if (comparison.tables.length === 0 && comparison.onlyInA.length === 0 && comparison.onlyInB.length === 0) return '  (no per-case tables in metrics.json)\n';
  for (const t of comparison.tables) {
    const primary = t.metrics[0];
    lines.push(`  ${t.group} (${t.path}): ${t.better} better, ${t.worse} worse, ${t.same} unchanged of ${t.cases.length} cases${primary ? `, ranked by ${primary}${lowerIsBetter(primary) ? ' (lower is better)' : ''}` : ''}`);
    for (const r of t.redefined) lines.push(`    ${r.metric}: definition differs between the runs; not compared`);
    if (t.onlyInA.length) lines.push(`    only in A: ${t.onlyInA.join(', ')}`);
    if (t.onlyInB.length) lines.push(`    only in B: ${t.onlyInB.join(', ')}`);
    for (const verdict of ['better', 'worse'] as const) {
      const chosen = t.cases.filter((c) => c.verdict === verdict);
      if (chosen.length === 0) continue;
      lines.push(`    ${verdict}:`);
      const idWidth = Math.max(...chosen.slice(0, limit).map((c) => c.id.length));
      for (const c of chosen.slice(0, limit)) {
        const others = t.metrics
          .slice(1)
          .filter((m) => c.changes[m])
          .map((m) => `${m} ${signed(c.changes[m]!.delta)}`)
          .join('  ');
        const main = c.changes[c.metric]!;
        lines.push(`      ${c.id.padEnd(idWidth)}  ${c.metric} ${formatNumber(main.old)} → ${formatNumber(main.new)} (${signed(main.delta)})${others ? `  ${others}` : ''}`);
      }
      if (chosen.length > limit) lines.push(`      … ${chosen.length - limit} more (--json lists all)`);
    }
  }
  for (const p of comparison.onlyInA) lines.push(`  ${p}: only in A`);
  for (const p of comparison.onlyInB) lines.push(`  ${p}: only in B`);
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------------------
// Pictures of a case: image files under the run's report outputs whose name contains the case id.

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.svg']);

function filesUnder(target: string): string[] {
  if (!fs.existsSync(target)) return [];
  if (!fs.statSync(target).isDirectory()) return [target];
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(target);
  return files;
}

/** Image files of the run's `report:` outputs (config snapshot), with the output they belong to. */
export function reportImages(runDir: string): { output: string; file: string }[] {
  const configFile = path.join(runDir, 'config.yaml');
  if (!fs.existsSync(configFile)) return [];
  const config = (YAML.parse(fs.readFileSync(configFile, 'utf8')) ?? {}) as JsonObject;
  const images: { output: string; file: string }[] = [];
  for (const ref of reportReferences(config)) {
    for (const file of filesUnder(path.join(runDir, 'stages', ref.stage, ref.output))) {
      if (IMAGE_EXTENSIONS.has(fileType(file))) images.push({ output: `${ref.stage}.${ref.output}`, file });
    }
  }
  return images;
}

/** Whether a file name shows a case: the id appears in it with no letter or digit right before or after. */
export function nameShowsCase(file: string, id: string): boolean {
  const stem = path.basename(file, path.extname(file));
  for (let at = stem.indexOf(id); at >= 0; at = stem.indexOf(id, at + 1)) {
    const before = stem[at - 1];
    const after = stem[at + id.length];
    if ((before === undefined || !/[a-z0-9]/i.test(before)) && (after === undefined || !/[a-z0-9]/i.test(after))) return true;
  }
  return false;
}

export function picturesOfCase(images: { output: string; file: string }[], id: string): { output: string; file: string }[] {
  return images.filter((i) => nameShowsCase(i.file, id));
}

// ---------------------------------------------------------------------------------------------------------
// The HTML page.

/** What the page needs of `flow diff` (inspect.ts's DiffResult; declared here so the two cannot import each other in a loop). */
export interface DiffForPage {
  a: string;
  b: string;
  pipelineA: string;
  pipelineB: string;
  params: { name: string; old: JsonValue | null; new: JsonValue | null }[];
  metrics: { name: string; old: number | null; new: number | null; delta: number | null; note?: string; sameAs?: string }[];
  stages: { name: string; change: string; reason: string[] }[];
  cases: PerCaseComparison;
  missingMetrics?: ('a' | 'b')[];
}

const DIFF_STYLE = `
.better{color:#15803d}.worse{color:#b91c1c}.same{color:#6b7280}
tr.case.better,tr.case.worse,tr.case.same{color:inherit}tr.case.better th{color:#15803d}tr.case.worse th{color:#b91c1c}
table.per-case th{white-space:nowrap;vertical-align:bottom}th.metric-head{text-align:center;border-bottom:1px solid #cbd0d8}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:8px 0 18px}
.pair figure img{max-width:100%;height:auto;display:block}
.pair h4{margin:0 0 4px}.case-head{font-weight:600;margin-top:12px}
td.change{font-weight:600}
`;

function valueText(v: JsonValue | null): string {
  return v === null ? '—' : typeof v === 'string' ? v : JSON.stringify(v);
}

function deltaCell(delta: number | null, improvement: number | null): string {
  if (delta === null || improvement === null) return '<td class="num">—</td>';
  const cls = improvement > 0 ? 'better' : improvement < 0 ? 'worse' : 'same';
  return `<td class="num change ${cls}">${escapeHtml(signed(delta))}</td>`;
}

function caseTableHtml(t: TableComparison): string {
  const head =
    `<tr><th rowspan="2">case</th>${t.metrics.map((m) => `<th colspan="3" class="metric-head">${escapeHtml(m)}${lowerIsBetter(m) ? ' <span class="muted">(lower is better)</span>' : ''}</th>`).join('')}</tr>` +
    `<tr>${t.metrics.map(() => '<th class="num">A</th><th class="num">B</th><th class="num">Δ</th>').join('')}</tr>`;
  const rows = t.cases
    .map((c) => {
      const cells = t.metrics
        .map((m) => {
          const ch = c.changes[m];
          return ch ? `<td class="num">${formatNumber(ch.old)}</td><td class="num">${formatNumber(ch.new)}</td>${deltaCell(ch.delta, ch.improvement)}` : '<td></td><td></td><td></td>';
        })
        .join('');
      return `<tr class="case ${c.verdict}" data-case="${escapeHtml(c.id)}"><th>${escapeHtml(c.id)}</th>${cells}</tr>`;
    })
    .join('');
  const notes = [
    ...t.redefined.map((r) => `<p class="worse">${escapeHtml(r.metric)}: its definition differs between the runs, so no delta is shown.</p>`),
    t.onlyInA.length ? `<p class="muted">only in A: ${escapeHtml(t.onlyInA.join(', '))}</p>` : '',
    t.onlyInB.length ? `<p class="muted">only in B: ${escapeHtml(t.onlyInB.join(', '))}</p>` : '',
  ].join('');
  return `<h3>${escapeHtml(t.group)} <span class="muted">(${escapeHtml(t.path)})</span></h3><p><span class="better">${t.better} better</span> · <span class="worse">${t.worse} worse</span> · ${t.same} unchanged; ranked by the change in ${escapeHtml(
    t.metrics[0] ?? '—',
  )}</p>${notes}<div class="scroll"><table class="data per-case" data-table="${escapeHtml(t.path)}"><thead>${head}</thead><tbody>${rows}</tbody></table></div>`;
}

function figureHtml(picture: { output: string; file: string } | undefined, runDir: string, run: string): string {
  if (!picture) return `<figure><figcaption>run ${escapeHtml(run)}: no picture of this case</figcaption></figure>`;
  const caption = `run ${run} · ${picture.output} · ${path.basename(picture.file)}`;
  const img = imageTag(picture.file, caption);
  if (img === null) return `<figure><figcaption>${escapeHtml(caption)} (too large to embed: ${escapeHtml(path.relative(runDir, picture.file))})</figcaption></figure>`;
  return `<figure data-run="${escapeHtml(run)}">${img}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

/** Side-by-side pictures of the most-changed cases that have a picture in either run (at most `count`). */
function picturesHtml(d: DiffForPage, runDirA: string, runDirB: string, count: number): string {
  const imagesA = reportImages(runDirA);
  const imagesB = reportImages(runDirB);
  if (imagesA.length === 0 && imagesB.length === 0) return '<p class="muted">Neither run lists image outputs under <code>report:</code>.</p>';
  const ranked = mostChangedCases(d.cases);
  const shown: string[] = [];
  let skipped = 0;
  for (const c of ranked) {
    if (shown.length >= count) break;
    const picsA = picturesOfCase(imagesA, c.id);
    const picsB = picturesOfCase(imagesB, c.id);
    if (picsA.length === 0 && picsB.length === 0) {
      skipped++;
      continue;
    }
    const outputs = [...new Set([...picsA, ...picsB].map((p) => p.output))];
    const pairs = outputs
      .map((output) => `<div class="pair">${figureHtml(picsA.find((p) => p.output === output), runDirA, d.a)}${figureHtml(picsB.find((p) => p.output === output), runDirB, d.b)}</div>`)
      .join('');
    const cls = c.improvement > 0 ? 'better' : c.improvement < 0 ? 'worse' : 'same';
    shown.push(`<div class="case-pictures" data-case="${escapeHtml(c.id)}"><div class="case-head">${escapeHtml(c.id)} <span class="${cls}">${escapeHtml(c.group)} ${escapeHtml(c.metric)} ${escapeHtml(signed(c.improvement))}${
      lowerIsBetter(c.metric) ? ' (improvement; lower is better)' : ''
    }</span></div>${pairs}</div>`);
  }
  const note = skipped > 0 ? `<p class="muted">${skipped} case${skipped === 1 ? '' : 's'} that changed more had no picture in either run (the pictures cover a subset of cases).</p>` : '';
  return shown.length ? `${note}${shown.join('')}` : `<p class="muted">No image file of the report outputs is named after a compared case.</p>`;
}

/** The self-contained page `flow diff A B --html` writes. */
export function renderDiffHtml(d: DiffForPage, runDirA: string, runDirB: string, pictures = 6): string {
  const params = d.params.length
    ? `<table class="data" id="params"><thead><tr><th>param</th><th>A</th><th>B</th></tr></thead><tbody>${d.params
        .map((p) => `<tr><th>${escapeHtml(p.name)}</th><td>${escapeHtml(valueText(p.old))}</td><td>${escapeHtml(valueText(p.new))}</td></tr>`)
        .join('')}</tbody></table>`
    : '<p class="muted">No param differs.</p>';
  const shownMetrics = d.metrics.filter((m) => m.sameAs === undefined);
  const repeated = d.metrics.length - shownMetrics.length;
  const missing = (d.missingMetrics ?? []).map((side) => `<p class="worse">Run ${escapeHtml(side === 'a' ? d.a : d.b)} (${side.toUpperCase()}) has no metrics.json: it stopped before writing one, so no metric is compared.</p>`).join('');
  const metrics = missing ? missing : d.metrics.length
    ? `<table class="data" id="metric-deltas"><thead><tr><th>metric</th><th>A</th><th>B</th><th>Δ</th><th></th></tr></thead><tbody>${shownMetrics
        .map(
          (m) =>
            `<tr><th>${escapeHtml(m.name)}</th><td class="num">${m.old === null ? '—' : formatNumber(m.old)}</td><td class="num">${m.new === null ? '—' : formatNumber(m.new)}</td>${deltaCell(m.delta, m.delta === null ? null : improvementOf(m.name, m.delta))}<td class="muted">${escapeHtml(
              m.note ?? (lowerIsBetter(m.name) ? 'lower is better' : ''),
            )}</td></tr>`,
        )
        .join('')}</tbody></table>${repeated ? `<p class="muted">${repeated} nested metric${repeated === 1 ? '' : 's'} with the same values as the ones above not repeated (<code>--json</code> lists all).</p>` : ''}`
    : '<p class="muted">No metric differs.</p>';
  const stages = `<table class="data" id="stages"><thead><tr><th>stage</th><th>change</th><th>why B ran it</th></tr></thead><tbody>${d.stages
    .map((s) => `<tr class="${s.change === 'rerun' ? 'rerun' : ''}"><th>${escapeHtml(s.name)}</th><td>${escapeHtml(s.change)}</td><td class="why">${escapeHtml(s.change === 'rerun' ? s.reason.join('; ') || 'key changed' : s.change === 'cached-in-both' ? 'cached in both' : s.change === 'same-key' ? (s.reason.length ? `same key, computed again: ${s.reason.join('; ')}` : 'reused (same key as A)') : s.change === 'not-done' ? `not done in B: ${s.reason.join('; ')}` : s.change)}</td></tr>`)
    .join('')}</tbody></table>`;
  const cases = d.cases.tables.length ? d.cases.tables.map(caseTableHtml).join('') : '<p class="muted">Neither metrics.json has a per-case table (an array of objects with an <code>id</code>).</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>diff ${escapeHtml(d.a)} → ${escapeHtml(d.b)}</title><style>${REPORT_STYLE}${DIFF_STYLE}</style></head>
<body><header><h1>${escapeHtml(d.pipelineA)}${d.pipelineB !== d.pipelineA ? ` vs ${escapeHtml(d.pipelineB)}` : ''} <span class="sub">A ${escapeHtml(d.a)} → B ${escapeHtml(d.b)}</span></h1>
<div class="sub">${d.params.length} param${d.params.length === 1 ? '' : 's'} changed · ${d.stages.filter((s) => s.change === 'rerun').length} of ${d.stages.length} stages re-ran</div></header>
<main>
<section id="params-section"><h2>Changed params</h2>${params}</section>
<section id="metrics-section"><h2>Metric deltas</h2>${metrics}</section>
<section id="stages-section"><h2>Stages</h2>${stages}</section>
<section id="cases-section"><h2>Per case</h2>${cases}</section>
<section id="pictures"><h2>Most-changed cases side by side (A left, B right)</h2>${picturesHtml(d, runDirA, runDirB, pictures)}</section>
</main></body></html>
`;
}

/** Reads a run's metrics.json (undefined when it has none). */
export function readRunMetrics(runDir: string): JsonValue | undefined {
  return readJsonIfExists<JsonValue>(path.join(runDir, 'metrics.json'));
}

// report.html: a self-contained page (no network, no CDN) built from a run folder alone, so it can be
// regenerated at any time. The engine knows nothing about images or models: it embeds the files of the
// outputs the pipeline lists under `report:` by their type (SVG inline, PNG/JPEG as data URIs, CSV as a
// table, JSON/text as preformatted text).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { JsonObject, JsonValue } from './stage.js';
import type { RunState, StageState } from './run-folder.js';
import { readJsonIfExists, writeFileAtomic } from './fs-util.js';

const MAX_CSV_ROWS = 300;
const MAX_TEXT_BYTES = 200_000;
const MAX_IMAGE_BYTES = 4_000_000;

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : value.toFixed(4);
}

function formatSeconds(ms: number | null): string {
  if (ms === null) return '';
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

/** The `${stages.S.outs.O}` references of the config snapshot's `report:` list, in order. */
export function reportReferences(config: JsonObject): { stage: string; output: string }[] {
  const list = config.report;
  const refs: { stage: string; output: string }[] = [];
  for (const item of Array.isArray(list) ? list : []) {
    const match = typeof item === 'string' ? /^\$\{stages\.([^.}]+)\.outs\.([^.}]+)\}$/.exec(item.trim()) : null;
    if (match) refs.push({ stage: match[1]!, output: match[2]! });
  }
  return refs;
}

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else if (ch !== '\r') cell += ch;
  }
  if (cell !== '' || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

function csvTable(text: string): string {
  const rows = parseCsv(text);
  const [header, ...body] = rows;
  if (!header) return '<p class="muted">(empty table)</p>';
  const shown = body.slice(0, MAX_CSV_ROWS);
  const cell = (value: string): string => {
    const n = Number(value);
    return value !== '' && Number.isFinite(n) ? `<td class="num">${escapeHtml(formatNumber(n))}</td>` : `<td>${escapeHtml(value)}</td>`;
  };
  const more = body.length > shown.length ? `<p class="muted">${body.length - shown.length} more rows in the file</p>` : '';
  return `<div class="scroll"><table class="data"><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${shown
    .map((r) => `<tr>${r.map(cell).join('')}</tr>`)
    .join('')}</tbody></table></div>${more}`;
}

const IMAGE_MIME: Record<string, string> = { '.png': 'image/png', '.gif': 'image/gif', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.svg': 'image/svg+xml' };

/** A `data:` URI of an image file (PNG, JPEG, GIF, SVG), or null when it is no image or too large to embed. */
export function imageDataUri(file: string): string | null {
  const mime = IMAGE_MIME[fileType(file)];
  if (mime === undefined || fs.statSync(file).size > MAX_IMAGE_BYTES) return null;
  return `data:${mime};base64,${fs.readFileSync(file).toString('base64')}`;
}

const KNOWN_EXTENSIONS = new Set(['.svg', '.png', '.jpg', '.jpeg', '.gif', '.csv', '.json', '.txt', '.md']);

/**
 * The type of a file as an extension: its own when known, else sniffed from its first bytes (single-file
 * outputs are named after the output, e.g. evaluate's `table` is a CSV with no extension).
 */
export function fileType(file: string): string {
  const ext = path.extname(file).toLowerCase();
  if (KNOWN_EXTENSIONS.has(ext)) return ext;
  const head = Buffer.alloc(512);
  const fd = fs.openSync(file, 'r');
  const n = fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  const bytes = head.subarray(0, n);
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return '.png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return '.jpg';
  if (bytes.subarray(0, 4).toString('latin1') === 'GIF8') return '.gif';
  if (bytes.includes(0)) return ext;
  const text = bytes.toString('utf8').trimStart();
  if (/^(<\?xml[^>]*>\s*)?<svg\b/.test(text)) return '.svg';
  if (text.startsWith('{') || text.startsWith('[')) return '.json';
  const lines = text.split('\n').slice(0, 3).filter((l) => l.length > 0);
  if (lines.length >= 2 && lines[0]!.includes(',') && lines.every((l) => l.split(',').length === lines[0]!.split(',').length)) return '.csv';
  return '.txt';
}

/** Width and height of a PNG from its IHDR chunk (null for any other file). */
export function pngSize(file: string): { width: number; height: number } | null {
  const head = Buffer.alloc(24);
  const fd = fs.openSync(file, 'r');
  const n = fs.readSync(fd, head, 0, 24, 0);
  fs.closeSync(fd);
  if (n < 24 || head.readUInt32BE(0) !== 0x89504e47 || head.toString('latin1', 12, 16) !== 'IHDR') return null;
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

/**
 * An <img> of an image file as a data: URI. A small PNG (a 32-px model's panel) is scaled up by a whole
 * factor with crisp pixels; others are left to CSS, which only ever shrinks them smoothly (pixelated
 * shrinking garbles the text drawn into panels).
 */
export function imageTag(file: string, alt: string, target = 560): string | null {
  const uri = imageDataUri(file);
  if (uri === null) return null;
  const size = pngSize(file);
  const factor = size && size.width > 0 ? Math.floor(target / size.width) : 1;
  const style = size && factor >= 2 ? ` class="upscaled" style="width:${size.width * factor}px"` : '';
  return `<img alt="${escapeHtml(alt)}"${style} src="${uri}">`;
}

function embedFile(file: string, title: string): string | null {
  const ext = fileType(file);
  const size = fs.statSync(file).size;
  const caption = `<figcaption>${escapeHtml(title)}</figcaption>`;
  if (ext === '.svg' && size <= MAX_IMAGE_BYTES) {
    // Inline SVG keeps curves crisp and searchable; strip any XML prolog, which is invalid inside HTML.
    const svg = fs.readFileSync(file, 'utf8').replace(/<\?xml[^>]*\?>/, '').replace(/<!DOCTYPE[^>]*>/i, '');
    return `<figure class="chart">${svg}${caption}</figure>`;
  }
  const img = ext === '.svg' ? null : imageTag(file, title);
  if (img !== null) return `<figure class="picture">${img}${caption}</figure>`;
  if (ext === '.csv' && size <= MAX_TEXT_BYTES) return `<h4>${escapeHtml(title)}</h4>${csvTable(fs.readFileSync(file, 'utf8'))}`;
  if ((ext === '.json' || ext === '.txt' || ext === '.md') && size <= MAX_TEXT_BYTES) {
    return `<details><summary>${escapeHtml(title)}</summary><pre>${escapeHtml(fs.readFileSync(file, 'utf8'))}</pre></details>`;
  }
  return null;
}

/** Files of one output (a file or a folder, recursively), sorted; SVG wins over a PNG of the same name. */
function outputFiles(target: string): string[] {
  if (!fs.existsSync(target)) return [];
  if (!fs.statSync(target).isDirectory()) return [target];
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(target);
  const svgStems = new Set(files.filter((f) => f.endsWith('.svg')).map((f) => f.slice(0, -4)));
  return files.filter((f) => !(f.endsWith('.png') && svgStems.has(f.slice(0, -4))));
}

function artifactSection(runDir: string, ref: { stage: string; output: string }): string {
  const target = path.join(runDir, 'stages', ref.stage, ref.output);
  const files = outputFiles(target);
  const id = `out-${ref.stage}-${ref.output}`.replace(/[^a-zA-Z0-9_-]/g, '_');
  const heading = `<h3 id="${id}">${escapeHtml(ref.stage)} · ${escapeHtml(ref.output)}</h3>`;
  if (files.length === 0) return `${heading}<p class="muted">not produced in this run</p>`;
  const figures: string[] = [];
  const others: string[] = [];
  for (const file of files) {
    const title = path.relative(target, file) || path.basename(file);
    const html = embedFile(file, title);
    if (html === null) continue;
    (html.startsWith('<figure') ? figures : others).push(html);
  }
  const grid = figures.length ? `<div class="grid" data-output="${escapeHtml(`${ref.stage}.${ref.output}`)}">${figures.join('')}</div>` : '';
  return `<section class="artifact">${heading}${grid}${others.join('')}</section>`;
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function groupOf(dotted: string): string {
  const parts = dotted.split('.');
  return parts.length >= 2 ? parts[parts.length - 2]! : dotted;
}

/** One table of cases found in metrics.json: its dotted path and, per case id, its numeric fields. */
export interface CaseTable {
  path: string;
  /** What the table is about: the path segment before the array's own key (`regions.WT.per_case` → `WT`). */
  group: string;
  /** Numeric field names in first-seen order. */
  fields: string[];
  cases: Map<string, Record<string, number>>;
}

/** Every array of objects with an `id` (string or number) and at least one numeric field, depth first. */
export function findCaseTables(metrics: JsonValue | undefined, prefix = ''): CaseTable[] {
  const tables: CaseTable[] = [];
  if (Array.isArray(metrics)) {
    const rows = metrics.filter(isJsonObject).filter((r) => typeof r.id === 'string' || typeof r.id === 'number');
    if (rows.length > 0 && rows.length === metrics.length) {
      const fields: string[] = [];
      const cases = new Map<string, Record<string, number>>();
      for (const row of rows) {
        const values: Record<string, number> = {};
        for (const [k, v] of Object.entries(row)) {
          if (k === 'id' || typeof v !== 'number' || !Number.isFinite(v)) continue;
          values[k] = v;
          if (!fields.includes(k)) fields.push(k);
        }
        cases.set(String(row.id), values);
      }
      if (fields.length > 0) tables.push({ path: prefix, group: groupOf(prefix), fields, cases });
    }
    return tables;
  }
  if (isJsonObject(metrics)) {
    for (const [k, v] of Object.entries(metrics)) {
      if (prefix === '' && k === 'definitions') continue;
      tables.push(...findCaseTables(v, prefix === '' ? k : `${prefix}.${k}`));
    }
  }
  return tables;
}

/** The per-group summary beside a case table: a sibling `mean` object if metrics.json has one, else the mean of the cases. */
function tableMeans(metrics: JsonObject, table: CaseTable): { values: Record<string, number>; computed: boolean } {
  let node: JsonValue | undefined = metrics;
  for (const key of table.path.split('.').slice(0, -1)) node = isJsonObject(node) ? node[key] : undefined;
  const given = isJsonObject(node) && isJsonObject(node.mean) ? node.mean : undefined;
  const values: Record<string, number> = {};
  let computed = false;
  for (const field of table.fields) {
    const stated = given?.[field];
    if (typeof stated === 'number') values[field] = stated;
    else if (given === undefined) {
      const present = [...table.cases.values()].map((c) => c[field]).filter((v): v is number => v !== undefined);
      if (present.length > 0) values[field] = present.reduce((a, b) => a + b, 0) / present.length;
      computed = true;
    }
  }
  return { values, computed };
}

function metricsSection(metrics: JsonObject | undefined): string {
  if (!metrics) return '<p class="muted">This run wrote no metrics.json.</p>';
  const headline = Object.entries(metrics).filter((entry): entry is [string, number] => typeof entry[1] === 'number');
  const rows = headline.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td class="num">${formatNumber(value)}</td></tr>`).join('');
  const tables = findCaseTables(metrics);
  let perGroup = '';
  if (tables.length > 0) {
    const fields = [...new Set(tables.flatMap((t) => t.fields))];
    const summary = tables.map((t) => ({ t, ...tableMeans(metrics, t) }));
    const head = `<tr><th>${tables.length > 1 ? 'group' : ''}</th><th>cases</th>${fields.map((f) => `<th>${escapeHtml(f)}</th>`).join('')}</tr>`;
    const body = summary
      .map(({ t, values, computed }) => `<tr><th>${escapeHtml(t.group)}${computed ? ' <span class="muted">(mean of cases)</span>' : ' mean'}</th><td class="num">${t.cases.size}</td>${fields.map((f) => `<td class="num">${values[f] === undefined ? '' : formatNumber(values[f]!)}</td>`).join('')}</tr>`)
      .join('');
    perGroup = `<h3>Mean${tables.length > 1 ? ' per group' : ''}</h3><table class="data" id="metrics-means"><thead>${head}</thead><tbody>${body}</tbody></table>`;
    for (const t of tables) {
      const caseRows = [...t.cases.entries()]
        .map(([id, values]) => `<tr><th>${escapeHtml(id)}</th>${t.fields.map((f) => `<td class="num">${values[f] === undefined ? '' : formatNumber(values[f]!)}</td>`).join('')}</tr>`)
        .join('');
      perGroup += `<details class="per-case"${t.cases.size <= 40 ? ' open' : ''}><summary>${escapeHtml(t.group)}: ${t.cases.size} cases <span class="muted">(${escapeHtml(t.path)})</span></summary><div class="scroll"><table class="data per-case" data-table="${escapeHtml(
        t.path,
      )}"><thead><tr><th>case</th>${t.fields.map((f) => `<th>${escapeHtml(f)}</th>`).join('')}</tr></thead><tbody>${caseRows}</tbody></table></div></details>`;
    }
  }
  const nested = Object.entries(metrics)
    .filter(([, value]) => typeof value === 'object' && value !== null)
    .map(([name, value]) => `<details><summary>${escapeHtml(name)} <span class="muted">(JSON)</span></summary><pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre></details>`)
    .join('');
  return `<table class="metrics" id="metrics-table"><tbody>${rows}</tbody></table>${perGroup}${nested}`;
}

function timelineSection(state: RunState): string {
  const starts = Object.values(state.stages).map((s) => (s.started ? Date.parse(s.started) : NaN)).filter(Number.isFinite);
  const ends = Object.values(state.stages).map((s) => (s.ended ? Date.parse(s.ended) : NaN)).filter(Number.isFinite);
  const t0 = starts.length ? Math.min(...starts) : 0;
  const span = Math.max(1, (ends.length ? Math.max(...ends) : t0) - t0);
  const row = (name: string, s: StageState): string => {
    const start = s.started ? Date.parse(s.started) - t0 : 0;
    const width = s.durationMs ?? 0;
    const left = (100 * start) / span;
    const pct = Math.max(0.4, (100 * width) / span);
    const label = s.cached ? 'cache hit' : s.status;
    const reason = s.cached ? '' : s.reason.join('; ');
    const detail = [reason, s.resumedFromCheckpoint ? 'resumed from checkpoint' : ''].filter(Boolean).join(' · ');
    const error = s.error ? `<div class="error">${escapeHtml(s.error)}</div>` : '';
    // A stage that never started has no place on the time axis.
    const bar = s.started ? `<div style="margin-left:${left.toFixed(2)}%;width:${pct.toFixed(2)}%"></div>` : '';
    return `<tr class="stage ${s.cached ? 'cached' : s.status}"><th>${escapeHtml(name)}</th><td>${escapeHtml(label)}</td><td class="num">${escapeHtml(
      formatSeconds(s.durationMs),
    )}</td><td class="bar">${bar}</td><td class="why">${escapeHtml(detail)}${error}</td></tr>`;
  };
  const rows = state.order.map((name) => (state.stages[name] ? row(name, state.stages[name]!) : '')).join('');
  return `<table class="timeline" id="timeline"><thead><tr><th>stage</th><th>status</th><th>time</th><th>timeline</th><th>why it ran</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export const REPORT_STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header .sub{opacity:.8}main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:12px 18px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 8px}h4{margin:10px 0 6px}
table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eef0f3;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#6b7280}
.timeline td.bar{width:40%;min-width:200px}.timeline td,.timeline th{white-space:nowrap}.timeline td.why{white-space:normal}.timeline td.bar div{height:12px;border-radius:3px;background:#3b82f6}
.timeline tr.cached td.bar div{background:#9ca3af}.timeline tr.failed td.bar div{background:#dc2626}
.timeline tr.interrupted td.bar div{background:#f59e0b}.timeline td.why{color:#4b5563;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;background:#fafafa;border:1px solid #eee;padding:6px}
figure.chart svg{max-width:560px;height:auto;display:block}figure.picture{max-width:600px}figure.picture img{max-width:100%;height:auto;display:block}img.upscaled{image-rendering:pixelated}
figcaption{font-size:12px;color:#4b5563;margin-top:4px}.scroll{max-height:420px;overflow:auto}
table.metrics{display:block;width:100%}table.metrics tbody{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));column-gap:18px}
table.metrics tr{display:flex;justify-content:space-between;border-bottom:1px solid #eef0f3}table.metrics td,table.metrics th{border:0}
.timeline .error{color:#b91c1c;margin-top:2px;white-space:pre-wrap}
section.stopped{border-color:#fca5a5;background:#fef2f2}section.stopped.interrupted{border-color:#fcd34d;background:#fffbeb}
pre{background:#f3f4f6;padding:10px;overflow:auto;max-height:480px;font-size:12px}
.status-done{color:#15803d}.status-failed{color:#b91c1c}.status-interrupted{color:#b45309}
`;

/** For a failed or interrupted run: which stage stopped it, its error, and how to continue. */
function stoppedBanner(state: RunState): string {
  if (state.status !== 'failed' && state.status !== 'interrupted') return '';
  const stage = state.order.find((n) => state.stages[n]?.status === state.status);
  const error = stage ? state.stages[stage]?.error : null;
  const what = `${stage ? `Stage <b>${escapeHtml(stage)}</b>` : 'The run'} ${state.status === 'failed' ? 'failed' : 'was interrupted'}`;
  return `<section class="stopped ${escapeHtml(state.status)}" id="stopped"><h2>${what}</h2>${error ? `<pre>${escapeHtml(error)}</pre>` : ''}<p>Continue with <code>flow resume ${escapeHtml(
    state.runId,
  )}</code>${state.status === 'failed' ? ' once the cause is fixed' : ''}: finished stages are kept${state.status === 'interrupted' ? ' and training continues from its last checkpoint' : ''}.</p></section>`;
}

/** Builds report.html's text from a run folder. */
export function renderRunReport(runDir: string): string {
  const state = readJsonIfExists<RunState>(path.join(runDir, 'state.json'));
  if (!state) throw new Error(`${runDir}: no state.json, so this is not a run folder`);
  const configText = fs.existsSync(path.join(runDir, 'config.yaml')) ? fs.readFileSync(path.join(runDir, 'config.yaml'), 'utf8') : '';
  const config = (YAML.parse(configText) ?? {}) as JsonObject;
  const env = readJsonIfExists<JsonObject>(path.join(runDir, 'env.json'));
  const metrics = readJsonIfExists<JsonObject>(path.join(runDir, 'metrics.json'));
  const started = Date.parse(state.started);
  const ended = state.ended ? Date.parse(state.ended) : NaN;
  const total = Number.isFinite(ended) ? formatSeconds(ended - started) : 'still running or stopped';
  const cachedCount = Object.values(state.stages).filter((s) => s.cached).length;
  const artifacts = reportReferences(config).map((ref) => artifactSection(runDir, ref)).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(state.pipeline)} · ${escapeHtml(state.runId)}</title><style>${REPORT_STYLE}</style></head>
<body><header><h1>${escapeHtml(state.pipeline)} <span class="sub">run ${escapeHtml(state.runId)}</span></h1>
<div class="sub">status <b class="status-${escapeHtml(state.status)}">${escapeHtml(state.status)}</b> · started ${escapeHtml(state.started)} · ${escapeHtml(
    total,
  )} · ${cachedCount}/${state.order.length} stages from cache${state.overrides.length ? ` · overrides: <code>${escapeHtml(state.overrides.join(' '))}</code>` : ''}</div></header>
<main>
${stoppedBanner(state)}
<section id="metrics"><h2>Metrics</h2>${metricsSection(metrics)}</section>
<section><h2>Stages</h2>${timelineSection(state)}</section>
${artifacts ? `<section id="outputs"><h2>Outputs</h2>${artifacts}</section>` : ''}
<section id="config"><h2>Resolved configuration</h2><pre>${escapeHtml(configText)}</pre></section>
<section id="environment"><h2>Environment</h2><pre>${escapeHtml(JSON.stringify(env ?? {}, null, 2))}</pre></section>
</main></body></html>
`;
}

/** Writes (or rewrites) runDir/report.html atomically. */
export function writeRunReport(runDir: string): string {
  const file = path.join(runDir, 'report.html');
  writeFileAtomic(file, renderRunReport(runDir), { durable: false }); // derived: rebuilt from the run folder
  return file;
}

// report.html: a self-contained page (no network, no CDN) built from a run folder alone, so it can be
// regenerated at any time. The engine knows nothing about images or models: it embeds the files of the
// outputs the pipeline lists under `report:` by their type (SVG inline, PNG/JPEG as data URIs, CSV as a
// table, JSON/text as preformatted text).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { JsonObject } from './stage.js';
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
  const mime = IMAGE_MIME[path.extname(file).toLowerCase()];
  if (mime === undefined || fs.statSync(file).size > MAX_IMAGE_BYTES) return null;
  return `data:${mime};base64,${fs.readFileSync(file).toString('base64')}`;
}

function embedFile(file: string, title: string): string | null {
  const ext = path.extname(file).toLowerCase();
  const size = fs.statSync(file).size;
  const caption = `<figcaption>${escapeHtml(title)}</figcaption>`;
  if (ext === '.svg' && size <= MAX_IMAGE_BYTES) {
    // Inline SVG keeps curves crisp and searchable; strip any XML prolog, which is invalid inside HTML.
    const svg = fs.readFileSync(file, 'utf8').replace(/<\?xml[^>]*\?>/, '').replace(/<!DOCTYPE[^>]*>/i, '');
    return `<figure class="chart">${svg}${caption}</figure>`;
  }
  const uri = ext === '.svg' ? null : imageDataUri(file);
  if (uri !== null) return `<figure class="picture"><img alt="${escapeHtml(title)}" src="${uri}">${caption}</figure>`;
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

function metricsSection(metrics: JsonObject | undefined): string {
  if (!metrics) return '<p class="muted">This run wrote no metrics.json.</p>';
  const headline = Object.entries(metrics).filter((entry): entry is [string, number] => typeof entry[1] === 'number');
  const rows = headline.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td class="num">${formatNumber(value)}</td></tr>`).join('');
  const nested = Object.entries(metrics)
    .filter(([, value]) => typeof value === 'object' && value !== null)
    .map(([name, value]) => `<details><summary>${escapeHtml(name)}</summary><pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre></details>`)
    .join('');
  return `<table class="metrics" id="metrics-table"><tbody>${rows}</tbody></table>${nested}`;
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
    const detail = [reason, s.resumedFromCheckpoint ? 'resumed from checkpoint' : '', s.error ?? ''].filter(Boolean).join(' · ');
    return `<tr class="stage ${s.cached ? 'cached' : s.status}"><th>${escapeHtml(name)}</th><td>${escapeHtml(label)}</td><td class="num">${escapeHtml(
      formatSeconds(s.durationMs),
    )}</td><td class="bar"><div style="margin-left:${left.toFixed(2)}%;width:${pct.toFixed(2)}%"></div></td><td class="why">${escapeHtml(detail)}</td></tr>`;
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
.timeline td.bar{width:40%;min-width:200px}.timeline td.bar div{height:12px;border-radius:3px;background:#3b82f6}
.timeline tr.cached td.bar div{background:#9ca3af}.timeline tr.failed td.bar div{background:#dc2626}
.timeline tr.interrupted td.bar div{background:#f59e0b}.timeline td.why{color:#4b5563;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;background:#fafafa;border:1px solid #eee;padding:6px}
figure.chart svg{max-width:560px;height:auto;display:block}figure.picture img{max-width:640px;image-rendering:pixelated;display:block}
figcaption{font-size:12px;color:#4b5563;margin-top:4px}.scroll{max-height:420px;overflow:auto}
pre{background:#f3f4f6;padding:10px;overflow:auto;max-height:480px;font-size:12px}
.status-done{color:#15803d}.status-failed{color:#b91c1c}.status-interrupted{color:#b45309}
`;

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
  writeFileAtomic(file, renderRunReport(runDir));
  return file;
}

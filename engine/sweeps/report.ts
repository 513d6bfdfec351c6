// A sweep's report.html: self-contained (inline SVG, no scripts from anywhere), rebuilt from sweep.json and the
// run folders alone. A table of every combination (swept params, status, run, key metrics) and, for each key
// metric and each swept param, the metric plotted against the param: one point per run, coloured by the
// value of another swept param when there is one. Numbers only: the engine stays image-agnostic.
import path from 'node:path';
import type { JsonValue } from '../stage.js';
import { writeFileAtomic } from '../fs-util.js';
import { escapeHtml, formatNumber, REPORT_STYLE } from '../report.js';
import { formatRunsTable, keyMetrics, summarizeRun, type RunSummary } from '../inspect.js';
import { readManifest, type SweepManifest } from './manifest.js';

/** Okabe-Ito, colour-blind safe. */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

export interface SweepPoint {
  x: JsonValue;
  y: number;
  /** The value of the colouring param (null: one colour). */
  group: string | null;
  label: string;
}

function text(v: JsonValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Round ticks (steps of 1, 2 or 5 × 10^k) covering [lo, hi]; a flat range gets a margin. */
function ticks(lo: number, hi: number): number[] {
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
  const rough = (hi - lo) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v < hi + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * One metric against one param as SVG. Numeric params get a numeric axis (log10 when every value is positive
 * and they span 100x or more, as learning rates do); others one slot per distinct value, in sweep order.
 */
export function scatterSvg(points: readonly SweepPoint[], xName: string, yName: string, order: readonly JsonValue[]): string {
  const groups = [...new Set(points.map((p) => p.group).filter((g): g is string => g !== null))];
  const legendRows = Math.ceil(groups.length / 4);
  const width = 420;
  const height = 266 + 14 * legendRows;
  const m = { left: 64, right: 16, top: 28, bottom: 50 + 14 * legendRows };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const numeric = order.every((v) => typeof v === 'number');
  const nums = order.filter((v): v is number => typeof v === 'number');
  const log = numeric && nums.every((v) => v > 0) && Math.max(...nums) / Math.min(...nums) >= 100;
  const tx = (v: number): number => (log ? Math.log10(v) : v);
  const slots = order.map(text);
  let px: (v: JsonValue) => number;
  let xTicks: { at: number; label: string }[];
  if (numeric) {
    const lo = Math.min(...nums.map(tx));
    const hi = Math.max(...nums.map(tx));
    const span = hi - lo || 1;
    px = (v) => m.left + 12 + ((tx(v as number) - lo) / span) * (plotW - 24);
    xTicks = nums.map((v) => ({ at: px(v), label: formatNumber(v) }));
  } else {
    px = (v) => m.left + ((slots.indexOf(text(v)) + 0.5) / slots.length) * plotW;
    xTicks = order.map((v) => ({ at: px(v), label: text(v) }));
  }
  const ys = points.map((p) => p.y);
  const yt = ticks(Math.min(...ys), Math.max(...ys));
  const [y0, y1] = [yt[0]!, yt[yt.length - 1]!];
  const py = (y: number): number => m.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const colour = (g: string | null): string => COLOURS[g === null ? 0 : groups.indexOf(g) % COLOURS.length]!;
  const s: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(`${yName} against ${xName}`)}">`];
  s.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="#fff" stroke="#999"/>`);
  s.push(`<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${escapeHtml(`${yName} vs ${xName}`)}</text>`);
  for (const t of yt) {
    s.push(`<line x1="${m.left}" x2="${m.left + plotW}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#eee"/>`);
    s.push(`<text x="${m.left - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end" font-size="10">${escapeHtml(formatNumber(t))}</text>`);
  }
  for (const t of xTicks) {
    s.push(`<line x1="${t.at.toFixed(1)}" x2="${t.at.toFixed(1)}" y1="${m.top + plotH}" y2="${m.top + plotH + 4}" stroke="#333"/>`);
    s.push(`<text x="${t.at.toFixed(1)}" y="${m.top + plotH + 16}" text-anchor="middle" font-size="10">${escapeHtml(t.label.length > 14 ? t.label.slice(0, 13) + '…' : t.label)}</text>`);
  }
  s.push(`<text x="${m.left + plotW / 2}" y="${m.top + plotH + 32}" text-anchor="middle" font-size="11">${escapeHtml(xName)}${log ? ' (log scale)' : ''}</text>`);
  for (const p of points) {
    s.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4" fill="${colour(p.group)}" fill-opacity="0.85"><title>${escapeHtml(`${p.label}: ${yName} ${formatNumber(p.y)}`)}</title></circle>`);
  }
  groups.forEach((g, i) => {
    const x = m.left + (i % 4) * 90;
    const y = m.top + plotH + 50 + Math.floor(i / 4) * 14;
    s.push(`<circle cx="${x + 4}" cy="${y - 4}" r="4" fill="${colour(g)}"/><text x="${x + 12}" y="${y}" font-size="10">${escapeHtml(g.length > 12 ? g.slice(0, 11) + '…' : g)}</text>`);
  });
  s.push('</svg>');
  return s.join('');
}

export interface SweepReportData {
  manifest: SweepManifest;
  runs: (RunSummary | null)[];
  metrics: string[];
}

export async function collectSweep(sweepDir: string, runsDir: string): Promise<SweepReportData> {
  const manifest = readManifest(sweepDir);
  const runs = await Promise.all(
    manifest.members.map((m) => (m.runId === null ? Promise.resolve(null) : summarizeRun(path.join(runsDir, manifest.pipeline, m.runId)).catch(() => null))),
  );
  const all = Object.assign({}, ...runs.map((r) => r?.metrics ?? {})) as Record<string, number>;
  return { manifest, runs, metrics: keyMetrics(all) };
}

export function renderSweepReport(data: SweepReportData): string {
  const { manifest, runs, metrics } = data;
  const keys = manifest.keys;
  const head = ['#', ...keys, 'status', 'run', ...metrics].map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const rows = manifest.members
    .map((m, i) => {
      const r = runs[i];
      const cells = [
        `<td class="num">${m.index + 1}</td>`,
        ...keys.map((k) => `<td>${escapeHtml(text(m.params[k] ?? null))}</td>`),
        `<td>${escapeHtml(r?.status ?? m.status ?? 'not started')}</td>`,
        `<td><code>${escapeHtml(m.runId ?? '—')}</code></td>`,
        ...metrics.map((name) => {
          const v = r?.metrics[name];
          return v === undefined ? '<td class="muted">—</td>' : `<td class="num">${escapeHtml(formatNumber(v))}</td>`;
        }),
      ];
      return `<tr>${cells.join('')}</tr>`;
    })
    .join('\n');
  const charts: string[] = [];
  for (const metric of metrics) {
    for (const key of keys) {
      // Colour by the first other swept param, so a 2-D grid shows as one curve per value of the other.
      const other = keys.find((k) => k !== key) ?? null;
      const points: SweepPoint[] = [];
      manifest.members.forEach((m, i) => {
        const y = runs[i]?.metrics[metric];
        if (y === undefined) return;
        points.push({ x: m.params[key] ?? null, y, group: other === null ? null : `${other}=${text(m.params[other] ?? null)}`, label: m.overrides.join(' ') });
      });
      if (points.length === 0) continue;
      const order = [...new Map(manifest.members.map((m) => [text(m.params[key] ?? null), m.params[key] ?? null])).values()];
      charts.push(`<figure class="chart">${scatterSvg(points, key, metric, order)}</figure>`);
    }
  }
  const done = manifest.members.filter((m) => m.status === 'done').length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(manifest.pipeline)} · ${escapeHtml(manifest.sweepId)}</title><style>${REPORT_STYLE}</style></head>
<body><header><h1>${escapeHtml(manifest.pipeline)} <span class="sub">${escapeHtml(manifest.sweepId)}</span></h1>
<div class="sub">status <b class="status-${escapeHtml(manifest.status)}">${escapeHtml(manifest.status)}</b> · ${manifest.members.length} runs, ${done} done · created ${escapeHtml(manifest.created)} ·
${manifest.sweeps.map((s) => `<code>--sweep ${escapeHtml(s)}</code>`).join(' ')}${manifest.sets.length ? ` · shared: ${manifest.sets.map((s) => `<code>--set ${escapeHtml(s)}</code>`).join(' ')}` : ''}</div></header>
<main>
${manifest.status === 'done' ? '' : `<section class="stopped ${manifest.status === 'failed' ? 'failed' : 'interrupted'}"><p>Not every run finished: continue with <code>flow resume ${escapeHtml(manifest.sweepId)}</code>.</p></section>`}
<section id="runs"><h2>Runs</h2><div class="scroll"><table class="data"><thead><tr>${head}</tr></thead><tbody>
${rows}
</tbody></table></div></section>
<section id="charts"><h2>Metrics against swept params</h2>
${charts.length ? `<div class="grid">${charts.join('\n')}</div>` : '<p class="muted">No run has metrics yet.</p>'}</section>
</main></body></html>
`;
}

/** `flow show SWEEP`: what the sweep is, its runs as `flow runs` shows them, and the combinations not started. */
export function formatSweep(data: SweepReportData, sweepDir: string, width = 160): string {
  const { manifest, runs } = data;
  const lines = [
    `sweep ${manifest.sweepId}  (${manifest.pipeline}, ${manifest.status})`,
    `pipeline file: ${manifest.file}`,
    `swept: ${manifest.sweeps.map((s) => `--sweep ${s}`).join(' ')}${manifest.sets.length ? `; shared: ${manifest.sets.map((s) => `--set ${s}`).join(' ')}` : ''}`,
    `${manifest.members.length} runs, up to ${manifest.jobs} at once; created ${manifest.created}`,
    `report: ${path.join(sweepDir, 'report.html')}`,
    '',
  ];
  const started = runs.filter((r): r is RunSummary => r !== null).map((r) => ({ ...r, sweep: manifest.sweepId }));
  if (started.length > 0) lines.push(formatRunsTable(started, width, { [manifest.sweepId]: manifest.keys }).trimEnd());
  const waiting = manifest.members.filter((m) => m.runId === null);
  if (waiting.length > 0) lines.push('', `not started (${waiting.length}): ${waiting.map((m) => m.overrides.join(' ')).join('; ')}`);
  if (manifest.status !== 'done') lines.push('', `continue with: flow resume ${manifest.sweepId}`);
  return lines.join('\n') + '\n';
}

/** Writes <sweep folder>/report.html (atomically) and returns its path. */
export async function writeSweepReport(sweepDir: string, runsDir: string): Promise<string> {
  const file = path.join(sweepDir, 'report.html');
  writeFileAtomic(file, renderSweepReport(await collectSweep(sweepDir, runsDir)));
  return file;
}

// Line charts as plain SVG (axes, ticks, grid, labels, legend), rendered to PNG by sharp (librsvg).
// Text uses generic font families; when no font is installed librsvg draws no glyphs but the render still
// succeeds, and every line, tick and legend swatch is geometry, so the chart stays readable.
import sharp from 'sharp';
import { writeFileAtomic } from '../atomic.js';

export interface ChartSeries {
  name: string;
  x: readonly number[];
  /** Non-finite values (NaN, missing epochs) break the line instead of failing the chart. */
  y: readonly number[];
  colour?: string;
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  width?: number;
  height?: number;
  /** Log-scale y (e.g. learning rate); non-positive values are dropped. */
  logY?: boolean;
}

/** Colour-blind-safe defaults (Okabe-Ito), used in series order. */
export const SERIES_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

/** Round tick values covering [min, max] (Heckbert's "nice numbers"). */
export function niceTicks(min: number, max: number, target = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const step = niceNumber((max - min) / Math.max(1, target - 1), true);
  const first = Math.floor(min / step) * step;
  const last = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let v = first; v <= last + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function niceNumber(range: number, round: boolean): number {
  const exponent = Math.floor(Math.log10(range));
  const fraction = range / 10 ** exponent;
  let nice: number;
  if (round) nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  else nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * 10 ** exponent;
}

export function formatTick(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e5 || magnitude < 1e-3) return Number(value.toPrecision(3)).toExponential().replace('e+', 'e');
  return String(Number(value.toPrecision(6)));
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const FONT = 'font-family="DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"';

export function lineChartSvg(chart: LineChart): string {
  const width = chart.width ?? 640;
  const height = chart.height ?? 400;
  const margin = { left: 72, right: 160, top: 40, bottom: 56 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const transformY = (v: number): number => (chart.logY ? Math.log10(v) : v);
  const points = chart.series.map((s) =>
    s.x.map((x, i) => [x, s.y[i]] as const).filter(([x, y]) =>
      Number.isFinite(x) && y !== undefined && Number.isFinite(y) && (!chart.logY || y > 0)),
  );
  const allX = points.flatMap((p) => p.map(([x]) => x));
  const allY = points.flatMap((p) => p.map(([, y]) => transformY(y!)));
  const xTicks = allX.length ? niceTicks(Math.min(...allX), Math.max(...allX)) : [0, 1];
  let yTicks: number[];
  if (chart.logY) {
    const lo = allY.length ? Math.floor(Math.min(...allY)) : 0;
    const hi = allY.length ? Math.ceil(Math.max(...allY)) : 1;
    yTicks = [];
    for (let e = lo; e <= Math.max(hi, lo + 1); e++) yTicks.push(e);
  } else {
    yTicks = allY.length ? niceTicks(Math.min(...allY), Math.max(...allY)) : [0, 1];
  }
  const [x0, x1] = [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const [y0, y1] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const px = (x: number): number => margin.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const py = (y: number): number => margin.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" ${FONT} fill="#000">${escapeXml(chart.title)}</text>`);
  for (const t of xTicks) {
    const x = px(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${margin.top}" x2="${x}" y2="${margin.top + plotH}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${x}" y1="${margin.top + plotH}" x2="${x}" y2="${margin.top + plotH + 5}" stroke="#000"/>`);
    out.push(`<text x="${x}" y="${margin.top + plotH + 18}" text-anchor="middle" font-size="11" ${FONT} fill="#000">${formatTick(t)}</text>`);
  }
  for (const t of yTicks) {
    const y = py(t).toFixed(1);
    const label = chart.logY ? formatTick(10 ** t) : formatTick(t);
    out.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${margin.left - 5}" y1="${y}" x2="${margin.left}" y2="${y}" stroke="#000"/>`);
    out.push(`<text x="${margin.left - 8}" y="${(Number(y) + 4).toFixed(1)}" text-anchor="end" font-size="11" ${FONT} fill="#000">${label}</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#000"/>`);
  out.push(`<text x="${margin.left + plotW / 2}" y="${height - 14}" text-anchor="middle" font-size="13" ${FONT} fill="#000">${escapeXml(chart.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13" ${FONT} fill="#000">${escapeXml(chart.yLabel)}</text>`);
  chart.series.forEach((s, index) => {
    const colour = s.colour ?? SERIES_COLOURS[index % SERIES_COLOURS.length]!;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    // A new subpath wherever a value is missing, so gaps show as gaps.
    let d = '';
    let pen = 'M';
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(x) || y === undefined || !Number.isFinite(y) || (chart.logY && y <= 0)) {
        pen = 'M';
        return;
      }
      d += `${pen}${px(x).toFixed(1)} ${py(transformY(y)).toFixed(1)} `;
      pen = 'L';
    });
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    // Markers, so a single-epoch series is still visible.
    for (const [x, y] of points[index]!) {
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(transformY(y!)).toFixed(1)}" r="2.5" fill="${colour}"/>`);
    }
    const ly = margin.top + 12 + index * 20;
    const lx = margin.left + plotW + 14;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${colour}" stroke-width="3"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}" font-size="12" ${FONT} fill="#000">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Rasterises SVG text to PNG bytes. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
}

/** Writes `<base>.svg` and `<base>.png` (each atomically); returns both paths. */
export async function writeLineChart(chart: LineChart, base: string): Promise<{ svg: string; png: string }> {
  const svg = lineChartSvg(chart);
  const png = await svgToPng(svg);
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png` };
}

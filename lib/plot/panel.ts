// Side-by-side panels `input | label | prediction` with colour-coded class overlays and a legend strip.
// Overlays are blended in memory (exact, testable colours); sharp only scales tiles and encodes the PNG.
import sharp from 'sharp';
import type { ClassColours, LabelMap, RgbImage } from '../datasets/dataset.js';
import type { LabelSpec } from '../contracts/labels.js';

export interface ClassColour {
  /** Label value in the dataset's own values (Carvana 255; BraTS 1, 2, 4). */
  value: number;
  name: string;
  rgb: [number, number, number];
}

/** Distinct, saturated colours for classes a dataset kind gives none. */
export const PALETTE: [number, number, number][] = [
  [0, 255, 0], [255, 0, 0], [255, 255, 0], [0, 128, 255], [255, 0, 255], [0, 255, 255], [255, 128, 0], [128, 0, 255], [128, 255, 128], [255, 128, 192],
];

/**
 * One overlay colour per non-background class of the label map, in class order: the dataset kind's own
 * colour where it has one (`kindColours`), else the next palette colour. Every class is shown.
 */
export function coloursFor(labels: LabelSpec, kindColours: ClassColours = {}): ClassColour[] {
  const taken = new Set(Object.values(kindColours).map((rgb) => rgb.join(',')));
  const free = PALETTE.filter((rgb) => !taken.has(rgb.join(',')));
  let next = 0;
  return labels.classes.slice(1).map((c) => ({ value: c.value, name: c.name, rgb: kindColours[c.value] ?? free[next++ % free.length]! }));
}

/** Blends each class colour over the background where the label map holds that class (alpha in 0..1). */
export function overlay(background: RgbImage, labels: Uint8Array, colours: readonly ClassColour[], alpha = 0.5): RgbImage {
  const pixels = background.width * background.height;
  if (labels.length !== pixels) {
    throw new Error(`overlay: label map has ${labels.length} pixels, background ${background.width}x${background.height} has ${pixels}`);
  }
  if (background.data.length !== pixels * 3) throw new Error(`overlay: background must be RGB (${pixels * 3} bytes), got ${background.data.length}`);
  const lookup = new Array<[number, number, number] | undefined>(256);
  for (const c of colours) lookup[c.value] = c.rgb;
  const out = Uint8Array.from(background.data);
  for (let i = 0; i < pixels; i++) {
    const rgb = lookup[labels[i]!];
    if (!rgb) continue;
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round((1 - alpha) * out[i * 3 + k]! + alpha * rgb[k]!);
  }
  return { data: out, width: background.width, height: background.height };
}

/** For a 3D map [Z, Y, X]: the axial slice index with the most non-background voxels (the first on ties). */
export function sliceWithMostForeground(map: LabelMap): number {
  if (map.shape.length !== 3) throw new Error(`expected a 3D label map [Z, Y, X], got shape ${JSON.stringify(map.shape)}`);
  const [depth, height, width] = map.shape as [number, number, number];
  const area = height * width;
  let best = 0;
  let bestCount = -1;
  for (let z = 0; z < depth; z++) {
    let count = 0;
    for (let i = z * area; i < (z + 1) * area; i++) if (map.data[i] !== 0) count++;
    if (count > bestCount) {
      best = z;
      bestCount = count;
    }
  }
  return best;
}

/** The 2D label picture of a map: itself for 2D, the axial slice `z` for 3D. */
export function labelPlane(map: LabelMap, z: number | null): { data: Uint8Array; height: number; width: number } {
  if (map.shape.length === 2) return { data: map.data, height: map.shape[0]!, width: map.shape[1]! };
  if (map.shape.length !== 3 || z === null) throw new Error(`labelPlane: shape ${JSON.stringify(map.shape)} with slice ${z}`);
  const [depth, height, width] = map.shape as [number, number, number];
  if (z < 0 || z >= depth) throw new Error(`slice ${z} outside 0..${depth - 1}`);
  return { data: map.data.subarray(z * height * width, (z + 1) * height * width), height, width };
}

export interface PanelInput {
  background: RgbImage;
  /** Label plane (same size as the background) or null when the case has no ground truth. */
  label: Uint8Array | null;
  prediction: Uint8Array;
  colours: readonly ClassColour[];
  /** Tiles wider than this are scaled down (a Carvana photo is 1918 px wide). */
  maxTileWidth?: number;
  title?: string;
}

export const PANEL_GAP = 4;
export const LEGEND_HEIGHT = 44;
const FONT = 'font-family="DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"';

/** Tile size after scaling (aspect kept). */
export function panelTileSize(width: number, height: number, maxTileWidth = 512): { width: number; height: number } {
  if (width <= maxTileWidth) return { width, height };
  return { width: maxTileWidth, height: Math.max(1, Math.round((height * maxTileWidth) / width)) };
}

/**
 * PNG bytes of `input | label overlay | prediction overlay` (each tile scaled to at most `maxTileWidth`),
 * separated by PANEL_GAP px of white, above a LEGEND_HEIGHT px legend strip with one swatch per class.
 */
export async function renderPanel(input: PanelInput): Promise<Buffer> {
  const { background, colours } = input;
  const tile = panelTileSize(background.width, background.height, input.maxTileWidth);
  const noLabel: RgbImage = { data: new Uint8Array(background.data.length).fill(96), width: background.width, height: background.height };
  const tiles = [
    background,
    input.label ? overlay(background, input.label, colours) : noLabel,
    overlay(background, input.prediction, colours),
  ];
  const scaled = await Promise.all(tiles.map((t) => scaleTile(t, tile.width, tile.height)));
  const width = tile.width * 3 + PANEL_GAP * 2;
  const height = tile.height + LEGEND_HEIGHT;
  const legend = legendSvg(width, colours, input.title, input.label === null);
  return sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([
      ...scaled.map((buffer, i) => ({ input: buffer, raw: { width: tile.width, height: tile.height, channels: 3 as const }, left: i * (tile.width + PANEL_GAP), top: 0 })),
      { input: Buffer.from(legend), left: 0, top: tile.height },
    ])
    .png()
    .toBuffer()
    // composite adds an alpha channel; panels are opaque, so store RGB.
    .then((rgba) => sharp(rgba).removeAlpha().png().toBuffer());
}

async function scaleTile(image: RgbImage, width: number, height: number): Promise<Buffer> {
  if (image.width === width && image.height === height) return Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function legendSvg(width: number, colours: readonly ClassColour[], title: string | undefined, noLabel: boolean): string {
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${LEGEND_HEIGHT}">`,
    `<rect width="${width}" height="${LEGEND_HEIGHT}" fill="#202020"/>`];
  // Row 1: what the tiles are; row 2: one colour swatch per class.
  const heading = `${title ? `${title}:  ` : ''}input | ${noLabel ? 'no label' : 'label'} | prediction`;
  parts.push(`<text x="8" y="16" font-size="12" ${FONT} fill="#ffffff">${escapeXml(heading)}</text>`);
  let x = 8;
  for (const c of colours) {
    parts.push(`<rect x="${x}" y="24" width="14" height="14" fill="rgb(${c.rgb.join(',')})"/>`);
    parts.push(`<text x="${x + 18}" y="36" font-size="12" ${FONT} fill="#ffffff">${escapeXml(c.name)}</text>`);
    x += 18 + c.name.length * 7 + 14;
  }
  parts.push('</svg>');
  return parts.join('');
}

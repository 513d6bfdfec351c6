// Generates the shipped Carvana-like sample in Kaggle's exact layout:
//   train/<id>_<NN>.jpg (RGB JPEG) and train_masks/<id>_<NN>_mask.gif (palette GIF, 0/255).
// Car-like shapes (body, cabin with windows, wheels) in a per-car colour, posed per angle, over varied
// backgrounds (gradients, texture, noise, a tiled floor, a cast shadow). The photo is anti-aliased by
// supersampling; the mask is crisp: a pixel is car when at least half of its subsamples are.
// Deterministic: every random draw comes from one seeded Rng, so a rerun writes byte-identical files.
//   node --import tsx scripts/make-samples/carvana.ts [--out DIR]
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../../lib/rng.js';
import { encodeGif, encodeJpeg } from '../../lib/image/index.js';
import { argValue, isMainModule, writeFileAtomic } from './common.js';

export interface CarvanaSampleOptions {
  cars: number;
  anglesPerCar: number;
  width: number;
  height: number;
  seed: number;
  jpegQuality: number;
}

export const defaultCarvanaSampleOptions: CarvanaSampleOptions = {
  cars: 24,
  anglesPerCar: 4,
  width: 240,
  height: 160,
  seed: 20170927,
  jpegQuality: 88,
};

type Rgb = [number, number, number];

interface CarStyle {
  body: Rgb;
  glass: Rgb;
  length: number; // car length in model units (1 = a typical sedan)
  depth: number; // car width seen from the front
  bodyHeight: number;
  cabinHeight: number;
  cabinShift: number; // cabin offset towards the rear, as a fraction of the length
  wheelRadius: number;
  scale: number; // pixels per unit
}

interface Pose {
  yaw: number;
  tilt: number;
  centerX: number;
  groundY: number;
  scale: number;
}

interface Background {
  top: Rgb;
  bottom: Rgb;
  floorNear: Rgb;
  floorFar: Rgb;
  horizon: number;
  waveFreqX: number;
  waveFreqY: number;
  wavePhase: number;
  waveAmp: number;
  tile: number;
  tileContrast: number;
  noise: number;
}

function hsvToRgb(h: number, s: number, v: number): Rgb {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const table: Rgb[] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]];
  const [r, g, b] = table[((i % 6) + 6) % 6]!;
  return [r * 255, g * 255, b * 255];
}

function randomColour(rng: Rng, saturation: [number, number], value: [number, number]): Rgb {
  return hsvToRgb(rng.next(), rng.uniform(saturation[0], saturation[1]), rng.uniform(value[0], value[1]));
}

function carStyle(rng: Rng): CarStyle {
  // Real car colours: many white/black/grey/silver, some saturated.
  const kind = rng.next();
  const body = kind < 0.45 ? randomColour(rng, [0.45, 0.95], [0.35, 0.95]) : kind < 0.65 ? randomColour(rng, [0, 0.08], [0.82, 0.97]) : kind < 0.8 ? randomColour(rng, [0, 0.1], [0.08, 0.2]) : randomColour(rng, [0, 0.12], [0.45, 0.7]);
  return {
    body,
    glass: randomColour(rng, [0.15, 0.45], [0.12, 0.3]),
    length: rng.uniform(0.92, 1.08),
    depth: rng.uniform(0.42, 0.5),
    bodyHeight: rng.uniform(0.2, 0.28),
    cabinHeight: rng.uniform(0.13, 0.2),
    cabinShift: rng.uniform(-0.06, 0.1),
    wheelRadius: rng.uniform(0.085, 0.11),
    scale: rng.uniform(140, 180),
  };
}

function background(rng: Rng): Background {
  return {
    top: randomColour(rng, [0, 0.6], [0.35, 1]),
    bottom: randomColour(rng, [0, 0.6], [0.25, 0.95]),
    floorNear: randomColour(rng, [0, 0.5], [0.2, 0.85]),
    floorFar: randomColour(rng, [0, 0.5], [0.2, 0.85]),
    horizon: rng.uniform(0.38, 0.62),
    waveFreqX: rng.uniform(0.02, 0.2),
    waveFreqY: rng.uniform(0.02, 0.2),
    wavePhase: rng.uniform(0, Math.PI * 2),
    waveAmp: rng.uniform(0, 28),
    tile: rng.uniform(10, 30),
    tileContrast: rng.uniform(0, 0.18),
    noise: rng.uniform(2, 12),
  };
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

function backgroundAt(bg: Background, x: number, y: number, width: number, height: number): Rgb {
  const horizonY = bg.horizon * height;
  if (y < horizonY) {
    const base = mix(bg.top, bg.bottom, y / horizonY);
    const wave = bg.waveAmp * Math.sin(x * bg.waveFreqX + y * bg.waveFreqY + bg.wavePhase);
    return [base[0] + wave, base[1] + wave, base[2] + wave];
  }
  // Floor: perspective tiles that get larger towards the viewer.
  const depth = (y - horizonY) / (height - horizonY);
  const base = mix(bg.floorFar, bg.floorNear, depth);
  const perspective = 0.25 + depth;
  const u = Math.floor(((x - width / 2) / perspective) / bg.tile);
  const v = Math.floor(Math.log1p(depth * 8) * 3);
  const shade = (u + v) % 2 === 0 ? 1 + bg.tileContrast : 1 - bg.tileContrast;
  return [base[0] * shade, base[1] * shade, base[2] * shade];
}

/** The car's colour at model coordinates (u right, v up from the ground), or null outside the car. */
function carAt(style: CarStyle, yaw: number, u: number, v: number): Rgb | null {
  const side = Math.abs(Math.sin(yaw));
  const front = Math.abs(Math.cos(yaw));
  const halfLength = (style.length * side + style.depth * front) / 2;
  const facing = Math.sin(yaw) >= 0 ? 1 : -1; // which way the car's nose points on screen
  const r = style.wheelRadius;
  const bodyBottom = r * 0.9;
  const bodyTop = bodyBottom + style.bodyHeight;

  // Wheels, drawn over the body: side views show two, front/back views show two at the corners.
  const wheelX = style.length * 0.33 * side + style.depth * 0.36 * front;
  for (const cx of [-wheelX, wheelX]) {
    const d = Math.hypot(u - cx, v - r);
    if (d <= r) {
      if (d < r * 0.5 && side > 0.4) return [170, 170, 175];
      return [28, 28, 30];
    }
  }

  // Body: rounded rectangle.
  if (v >= bodyBottom && v <= bodyTop && Math.abs(u) <= halfLength) {
    const corner = Math.min(0.06, style.bodyHeight / 3);
    const dx = Math.abs(u) - (halfLength - corner);
    const dy = Math.max(bodyBottom + corner - v, v - (bodyTop - corner));
    if (!(dx > 0 && dy > 0 && Math.hypot(dx, dy) > corner)) {
      const height = (v - bodyBottom) / style.bodyHeight;
      // Lighter towards the top, a sharp highlight line along the shoulder, lights at the ends.
      let shade = 0.72 + 0.38 * height;
      if (Math.abs(height - 0.78) < 0.04) shade += 0.25;
      const base: Rgb = [style.body[0] * shade, style.body[1] * shade, style.body[2] * shade];
      const endDistance = halfLength - Math.abs(u);
      if (endDistance < 0.05 && height > 0.45 && height < 0.7) {
        const nose = Math.sign(u) === facing || front > 0.9;
        return nose ? [235, 230, 200] : [190, 30, 30];
      }
      return base;
    }
  }

  // Cabin: a trapezoid on the body, with windows inset.
  const cabinHeight = style.cabinHeight;
  if (v > bodyTop && v <= bodyTop + cabinHeight) {
    const t = (v - bodyTop) / cabinHeight;
    const center = style.cabinShift * style.length * side * facing * -1;
    const halfWidth = halfLength * (0.68 - 0.26 * t);
    const offset = Math.abs(u - center);
    if (offset <= halfWidth) {
      const frame = 0.022;
      const inside = offset <= halfWidth - frame && t < 1 - frame / cabinHeight;
      const pillar = side > 0.5 && Math.abs(u - center) < frame * 0.8;
      if (inside && !pillar) {
        const glint = 0.8 + 0.5 * t;
        return [style.glass[0] * glint, style.glass[1] * glint, style.glass[2] * glint];
      }
      return [style.body[0] * 0.95, style.body[1] * 0.95, style.body[2] * 0.95];
    }
  }
  return null;
}

/** Renders one photo and its mask. */
export function renderCarImage(style: CarStyle, pose: Pose, bg: Background, rng: Rng, width: number, height: number): { rgb: Uint8Array; mask: Uint8Array } {
  const rgb = new Uint8Array(width * height * 3);
  const mask = new Uint8Array(width * height);
  const sub = 3; // 3x3 supersampling for anti-aliased edges in the photo
  const cos = Math.cos(pose.tilt);
  const sin = Math.sin(pose.tilt);
  const halfLength = (style.length * Math.abs(Math.sin(pose.yaw)) + style.depth * Math.abs(Math.cos(pose.yaw))) / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let carSamples = 0;
      for (let sy = 0; sy < sub; sy++) {
        for (let sx = 0; sx < sub; sx++) {
          const px = x + (sx + 0.5) / sub;
          const py = y + (sy + 0.5) / sub;
          const dx = (px - pose.centerX) / pose.scale;
          const dy = (pose.groundY - py) / pose.scale;
          const u = dx * cos - dy * sin;
          const v = dx * sin + dy * cos;
          let colour = carAt(style, pose.yaw, u, v);
          if (colour !== null) {
            carSamples++;
          } else {
            colour = backgroundAt(bg, px, py, width, height);
            // Soft shadow on the floor under the car (not part of the mask).
            const shadow = Math.hypot(u / (halfLength * 1.15), (v + 0.01) / 0.06);
            if (shadow < 1) colour = mix(colour, [10, 10, 12], 0.55 * (1 - shadow * shadow));
          }
          r += colour[0];
          g += colour[1];
          b += colour[2];
        }
      }
      const n = sub * sub;
      const noise = bg.noise;
      const at = (y * width + x) * 3;
      rgb[at] = clampByte(r / n + noise * (rng.next() - 0.5));
      rgb[at + 1] = clampByte(g / n + noise * (rng.next() - 0.5));
      rgb[at + 2] = clampByte(b / n + noise * (rng.next() - 0.5));
      mask[y * width + x] = carSamples * 2 >= n ? 255 : 0;
    }
  }
  return { rgb, mask };
}

function clampByte(value: number): number {
  return value <= 0 ? 0 : value >= 255 ? 255 : Math.round(value);
}

function hexId(rng: Rng): string {
  let id = '';
  for (let i = 0; i < 12; i++) id += rng.int(16).toString(16);
  return id;
}

/** Writes the sample into `outDir` (train/ and train_masks/); returns the relative paths written, sorted. */
export async function generateCarvanaSample(outDir: string, options: CarvanaSampleOptions = defaultCarvanaSampleOptions): Promise<string[]> {
  const rng = new Rng(options.seed);
  const written: string[] = [];
  const ids = new Set<string>();
  for (let car = 0; car < options.cars; car++) {
    let id = hexId(rng);
    while (ids.has(id)) id = hexId(rng);
    ids.add(id);
    const style = carStyle(rng);
    const angles = rng.shuffle(Array.from({ length: 16 }, (_, i) => i + 1)).slice(0, options.anglesPerCar).sort((a, b) => a - b);
    for (const angle of angles) {
      const pose: Pose = {
        yaw: ((angle - 1) * Math.PI) / 8,
        tilt: rng.uniform(-0.05, 0.05),
        centerX: options.width / 2 + rng.uniform(-0.07, 0.07) * options.width,
        groundY: options.height * rng.uniform(0.74, 0.9),
        scale: style.scale * rng.uniform(0.93, 1.07) * (options.width / 240),
      };
      const bg = background(rng);
      const { rgb, mask } = renderCarImage(style, pose, bg, rng, options.width, options.height);
      const stem = `${id}_${String(angle).padStart(2, '0')}`;
      const jpeg = await encodeJpeg({ data: rgb, width: options.width, height: options.height, channels: 3 }, options.jpegQuality);
      const gif = await encodeGif({ data: mask, width: options.width, height: options.height, channels: 1 });
      const imagePath = `train/${stem}.jpg`;
      const maskPath = `train_masks/${stem}_mask.gif`;
      writeFileAtomic(path.join(outDir, imagePath), jpeg);
      writeFileAtomic(path.join(outDir, maskPath), gif);
      written.push(imagePath, maskPath);
    }
  }
  return written.sort();
}

if (isMainModule(import.meta.url)) {
  const outDir = path.resolve(argValue('out') ?? path.join(process.cwd(), 'data', 'samples', 'carvana'));
  fs.mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const files = await generateCarvanaSample(outDir);
  let bytes = 0;
  for (const file of files) bytes += fs.statSync(path.join(outDir, file)).size;
  console.log(`wrote ${files.length} files (${(bytes / 1024).toFixed(0)} KiB) to ${outDir} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

// Scale bench: do flow's data stages and one epoch of training cost the same per sample, and the same memory, as
// the dataset grows? Generates full-size synthetic data in the real raw layouts (Carvana: 1918x1280 JPEG photos
// with palette-GIF masks in train/ and train_masks/, Kaggle's <car>_<NN> naming; BraTS: 240x240x155 int16
// .nii.gz per modality + seg in Training/HGG|LGG/<patient>/), then runs the real pipeline (the `flow` CLI) at
// N = 1x, 4x, 16x of a base size, one stage more per run on a shared cache, so each run's peak RSS (VmHWM of the
// flow process) is the newest stage's. Per stage: wall time per sample, peak RSS, cache bytes; the RSS ratio
// 16x/1x (goal <= 1.25); each data stage's throughput beside baselines measured in the same run over the same
// files on both cores (sharp decoding alone, zlib inflating alone; goal >= 0.8x); and the wall time the full
// Kaggle set (5,088 images) and BraTS 2019 (335 patients) would take here, projected from the largest N.
// Then bytes per sample of the tensor datasets as written today (float32) vs through lib/tensors' compact storage.
//
// Usage: node dist/bench/scale.js [--carvana-base 8] [--brats-base 2] [--scales 1,4,16] [--only carvana|brats]
//        [--carvana-size 512] [--brats-size 64] [--quick]
// Templates are rendered once (4 photos, 1 patient) and hard-linked under every name: decoding and inflating cost
// the same per file, and generation stays cheap on a small machine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import sharp from 'sharp';
import YAML from 'yaml';
import { generateCarvanaSample } from '../scripts/make-samples/carvana.js';
import { writeNifti } from '../lib/nifti/write.js';
import { Rng } from '../lib/rng.js';
import { TensorDatasetWriter, readTensorDataset, readTensorSpec, type TensorWriterSpec } from '../lib/tensors/dataset.js';
import { makeFlowHome, pipelinesDir, readRunState, runDirs, type FlowHome } from '../test/e2e/helpers.js';
import { makeTempDir } from '../test/helpers/paths.js';
import { timedRun, writeRssProbe } from './pipelines.js';
import { isMainModule, machineLine, printTables, type BenchOptions, type BenchTable } from './table.js';

const gunzip = promisify(zlib.gunzip);

interface ScaleArgs {
  carvanaBase: number;
  bratsBase: number;
  scales: number[];
  only: 'carvana' | 'brats' | null;
  carvanaSize: number;
  bratsSize: number;
}

const FULL = { carvana: 5088, brats: 335 };

// ------------------------------------------------------------------------------------------------ generation

function linkOrCopy(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
  }
}

/** Four 1918x1280 photos and masks, rendered by the sample generator at Kaggle's size. */
async function carvanaTemplates(dir: string): Promise<Array<{ image: string; mask: string }>> {
  await generateCarvanaSample(dir, { cars: 2, anglesPerCar: 2, width: 1918, height: 1280, seed: 12, jpegQuality: 90 });
  return fs
    .readdirSync(path.join(dir, 'train'))
    .sort()
    .map((name) => ({ image: path.join(dir, 'train', name), mask: path.join(dir, 'train_masks', name.replace(/\.jpg$/, '_mask.gif')) }));
}

/** `count` images in Kaggle's layout: cars of up to 16 angles (at least 2 cars, so the split has a val side). */
function carvanaLayout(root: string, count: number, templates: Array<{ image: string; mask: string }>): void {
  const perCar = Math.min(16, Math.max(1, Math.floor(count / 2)));
  for (let i = 0; i < count; i++) {
    const car = (0x5ca1e0000000 + Math.floor(i / perCar)).toString(16);
    const stem = `${car}_${String((i % perCar) + 1).padStart(2, '0')}`;
    const t = templates[i % templates.length]!;
    linkOrCopy(t.image, path.join(root, 'train', `${stem}.jpg`));
    linkOrCopy(t.mask, path.join(root, 'train_masks', `${stem}_mask.gif`));
  }
}

const BRATS_DIMS = [240, 240, 155];
const MODALITIES = ['flair', 't1', 't1ce', 't2'] as const;

/** One 240x240x155 patient: an ellipsoid brain with noise, a tumour of necrotic core, enhancing ring and edema. */
async function bratsTemplate(dir: string): Promise<Record<string, string>> {
  const [X, Y, Z] = BRATS_DIMS as [number, number, number];
  const n = X * Y * Z;
  fs.mkdirSync(dir, { recursive: true });
  const label = new Uint8Array(n);
  const brain = new Uint8Array(n);
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const e = ((x - 120) / 70) ** 2 + ((y - 120) / 88) ** 2 + ((z - 75) / 62) ** 2;
        if (e > 1) continue;
        brain[i] = 1;
        const r = Math.hypot(x - 140, y - 105, (z - 80) * 1.2);
        label[i] = r < 7 ? 1 : r < 12 ? 4 : r < 20 ? 2 : 0;
      }
    }
  }
  const files: Record<string, string> = {};
  const base = { dims: BRATS_DIMS, spacing: [1, 1, 1], affine: [-1, 0, 0, 0, 0, -1, 0, 239, 0, 0, 1, 0, 0, 0, 0, 1] };
  const contrast: Record<string, number[]> = { flair: [400, 300, 900, 700], t1: [500, 250, 450, 420], t1ce: [520, 300, 1100, 480], t2: [450, 900, 800, 1000] };
  const rng = new Rng(99);
  for (const modality of MODALITIES) {
    const [tissue, core, ring, edema] = contrast[modality]!;
    const data = new Int16Array(n);
    for (let i = 0; i < n; i++) {
      if (!brain[i]) continue;
      const mean = [tissue, core, edema, 0, ring][label[i]!]!;
      data[i] = Math.max(1, Math.round(mean! + 40 * rng.normal()));
    }
    files[modality] = path.join(dir, `template_${modality}.nii.gz`);
    await writeNifti(files[modality]!, { ...base, datatype: 'int16', data, description: `flow scale bench ${modality}` });
  }
  files.seg = path.join(dir, 'template_seg.nii.gz');
  await writeNifti(files.seg, { ...base, datatype: 'uint8', data: label, description: 'flow scale bench seg' });
  return files;
}

function bratsLayout(root: string, patients: number, template: Record<string, string>): void {
  for (let p = 0; p < patients; p++) {
    const id = `BraTS19_SCL_${String(p + 1).padStart(4, '0')}_1`;
    const folder = path.join(root, 'Training', p % 3 === 2 ? 'LGG' : 'HGG', id);
    for (const part of [...MODALITIES, 'seg']) linkOrCopy(template[part]!, path.join(folder, `${id}_${part}.nii.gz`));
  }
}

// ------------------------------------------------------------------------------------------------ pipeline runs

interface StageCost {
  step: string;
  samples: number;
  seconds: number;
  peakRssMiB: number | null;
  cacheBytes: number;
}

function treeBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(full);
    else if (entry.isFile()) total += fs.statSync(full).size;
  }
  return total;
}

/** The pipeline file cut after `stages` (in its own order), without the report and metrics that name later ones. */
function truncatedPipeline(source: string, keep: readonly string[], out: string): void {
  const doc = YAML.parse(fs.readFileSync(source, 'utf8')) as { stages: Record<string, unknown>; metrics?: unknown; report?: unknown };
  doc.stages = Object.fromEntries(Object.entries(doc.stages).filter(([name]) => keep.includes(name)));
  delete doc.metrics;
  delete doc.report;
  fs.writeFileSync(out, YAML.stringify(doc));
}

export const STEPS: Array<{ step: string; stages: string[] }> = [
  { step: 'ingest', stages: ['ingest'] },
  { step: 'tfrecord.write', stages: ['records'] },
  { step: 'tfrecord.read', stages: ['dataset'] },
  { step: 'preprocess', stages: ['preprocess'] },
  { step: 'train (1 epoch)', stages: ['hparams', 'model', 'train'] },
];

/** The newest run folder of each home (see runSteps). */
const lastRun = new Map<FlowHome, string>();

/** Runs the pipeline one step further each time on one cache; returns each step's cost. */
export async function runSteps(pipeline: 'carvana' | 'brats', root: string, samples: number, overrides: string[], steps = STEPS): Promise<{ costs: StageCost[]; home: FlowHome }> {
  const home = makeFlowHome(`flow-scale-${pipeline}-`);
  const probe = writeRssProbe(home.dir);
  const rssFile = path.join(home.dir, 'rss.txt');
  const costs: StageCost[] = [];
  const kept: string[] = [];
  for (const { step, stages } of steps) {
    kept.push(...stages);
    const file = path.join(home.dir, `${pipeline}.yaml`);
    truncatedPipeline(path.join(pipelinesDir, `${pipeline}.yaml`), kept, file);
    const before = treeBytes(home.cacheDir);
    const runsBefore = new Set(runDirs(home, pipeline));
    const run = await timedRun(home, file, [`data.root=${root}`, ...overrides], probe, rssFile);
    if (run.code !== 0) throw new Error(`${pipeline} ${step} (${samples} samples) exited ${run.code}:\n${run.stderr.slice(-3000)}`);
    // The run folder this run made (names sort by second, so "the latest" is ambiguous within one).
    const runDir = runDirs(home, pipeline).find((dir) => !runsBefore.has(dir));
    if (runDir === undefined) throw new Error(`${pipeline} ${step}: no new run folder under ${home.runsDir}`);
    lastRun.set(home, runDir);
    const state = readRunState(runDir);
    const seconds = stages.reduce((sum, name) => sum + (state.stages[name]?.durationMs ?? 0) / 1000, 0);
    costs.push({ step, samples, seconds, peakRssMiB: run.peakRssMiB, cacheBytes: treeBytes(home.cacheDir) - before });
  }
  return { costs, home };
}

// ------------------------------------------------------------------------------------------------ baselines

/** Runs `work` over `items` with `parallel` at a time; returns the seconds taken. */
async function timedPool<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
  return (performance.now() - started) / 1000;
}

/** Seconds per image to decode every photo and mask with sharp alone, both cores busy. */
async function sharpBaseline(root: string): Promise<number> {
  const photos = fs.readdirSync(path.join(root, 'train')).sort();
  const files = photos.flatMap((name) => [path.join(root, 'train', name), path.join(root, 'train_masks', name.replace(/\.jpg$/, '_mask.gif'))]);
  const seconds = await timedPool(files, os.availableParallelism(), (file) => sharp(file).raw().toBuffer());
  return seconds / photos.length;
}

/** Seconds per patient to inflate every .nii.gz with zlib alone, both cores busy. */
async function zlibBaseline(root: string): Promise<number> {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith('.nii.gz')) files.push(path.join(dir, e.name));
    }
  };
  walk(root);
  const seconds = await timedPool(files, os.availableParallelism(), async (file) => gunzip(fs.readFileSync(file)));
  return seconds / (files.length / 5);
}

// ------------------------------------------------------------------------------------------------ compact storage

/** Bytes of tensor data per sample as written (float32 x) and through the compact writer (dtype auto / uint8). */
export async function compactBytes(dir: string, decode: TensorWriterSpec['decode'] | undefined): Promise<{ before: number; after: number; xDtype: string }> {
  const spec = await readTensorSpec(dir);
  const out = path.join(makeTempDir('flow-scale-compact-'), 'tensors');
  const writer = await TensorDatasetWriter.create(out, {
    x: { shape: spec.x.shape, dtype: 'auto', ...(decode ? { decode } : {}) },
    y: { shape: spec.y.shape, dtype: 'auto' },
    classes: spec.classes,
    meta: spec.meta,
  });
  let before = 0;
  for await (const sample of readTensorDataset(dir)) {
    before += sample.x.byteLength + sample.y.byteLength;
    await writer.add(sample);
  }
  const written = await writer.close();
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return { before: before / spec.count, after: writer.tensorBytes / spec.count, xDtype: written.x.dtype };
}

/** The decode affine of a Carvana transform.json's normalisation (x = pixel / 255 - mean) / std). */
export function carvanaDecode(transformFile: string): TensorWriterSpec['decode'] {
  const transform = JSON.parse(fs.readFileSync(transformFile, 'utf8')) as { normalize: { mean: number[]; std: number[] } };
  const { mean, std } = transform.normalize;
  return { scale: std.map((s) => 1 / (255 * s)), offset: mean.map((m, c) => -m / std[c]!) };
}

/** The cache entry's folder holding `output` of `stage` in the newest run (state.json names the entry's key). */
export function stageOutput(home: FlowHome, pipeline: string, stage: string, output: string): string {
  const key = readRunState(lastRun.get(home)!).stages[stage]?.key;
  const dir = key ? path.join(home.cacheDir, 'entries', key, 'outs', output) : '';
  if (!key || !fs.existsSync(dir)) throw new Error(`${pipeline}: no cache entry for ${stage}'s ${output} under ${home.cacheDir}`);
  return dir;
}

// ------------------------------------------------------------------------------------------------ the bench

function parseArgs(argv: string[], quick: boolean): ScaleArgs {
  const value = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = value('only');
  return {
    carvanaBase: Number(value('carvana-base') ?? (quick ? 4 : 8)),
    bratsBase: Number(value('brats-base') ?? 2),
    scales: (value('scales') ?? (quick ? '1,2' : '1,4,16')).split(',').map(Number),
    only: only === 'carvana' || only === 'brats' ? only : null,
    carvanaSize: Number(value('carvana-size') ?? (quick ? 128 : 512)),
    bratsSize: Number(value('brats-size') ?? 64),
  };
}

const fmt = (v: number, digits = 2) => v.toFixed(digits);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

interface DatasetPlan {
  pipeline: 'carvana' | 'brats';
  unit: string;
  base: number;
  full: number;
  overrides: string[];
  generate: (templatesDir: string) => Promise<(root: string, count: number) => void>;
  baseline: (root: string) => Promise<{ name: string; secondsPerSample: number; stages: string[] }>;
}

export async function run(options: BenchOptions, argv: string[] = []): Promise<BenchTable[]> {
  const args = parseArgs(argv, options.quick);
  const allPlans: DatasetPlan[] = [
    {
      pipeline: 'carvana',
      unit: 'image',
      base: args.carvanaBase,
      full: FULL.carvana,
      overrides: [`train.input_size=[${args.carvanaSize},${args.carvanaSize}]`, 'train.batch_size=4', 'train.epochs=1', 'train.filters=8', 'train.checkpoint_every_steps=0'],
      generate: async (dir) => {
        const templates = await carvanaTemplates(dir);
        return (root, count) => carvanaLayout(root, count, templates);
      },
      baseline: async (root) => ({ name: 'sharp decode alone (photo + mask)', secondsPerSample: await sharpBaseline(root), stages: ['ingest', 'preprocess'] }),
    },
    {
      pipeline: 'brats',
      unit: 'patient',
      base: args.bratsBase,
      full: FULL.brats,
      overrides: [`train.input_size=[${args.bratsSize},${args.bratsSize}]`, 'train.epochs=1', 'train.filters=8', 'train.checkpoint_every_steps=0'],
      generate: async (dir) => {
        const template = await bratsTemplate(dir);
        return (root, count) => bratsLayout(root, count, template);
      },
      baseline: async (root) => ({ name: 'zlib inflate alone (5 .nii.gz)', secondsPerSample: await zlibBaseline(root), stages: ['ingest', 'tfrecord.write', 'tfrecord.read', 'preprocess'] }),
    },
  ];
  const plans = allPlans.filter((plan) => args.only === null || plan.pipeline === args.only);

  const tables: BenchTable[] = [];
  for (const plan of plans) {
    const work = makeTempDir(`flow-scale-${plan.pipeline}-data-`);
    try {
      const layout = await plan.generate(path.join(work, 'templates'));
      const byScale = new Map<number, StageCost[]>();
      const baselines = new Map<number, { name: string; secondsPerSample: number; stages: string[] }>();
      let compact: { before: number; after: number; xDtype: string } | null = null;
      const trainSummaries = new Map<number, { images_per_s: number; input_share: number }>();
      for (const scale of args.scales) {
        const count = plan.base * scale;
        const root = path.join(work, `n${count}`);
        layout(root, count);
        const { costs, home } = await runSteps(plan.pipeline, root, count, plan.overrides);
        byScale.set(scale, costs);
        baselines.set(scale, await plan.baseline(root));
        trainSummaries.set(scale, JSON.parse(fs.readFileSync(stageOutput(home, plan.pipeline, 'train', 'summary'), 'utf8')) as { images_per_s: number; input_share: number });
        if (scale === args.scales[0]) {
          const trainDir = stageOutput(home, plan.pipeline, 'preprocess', 'train');
          const decode = plan.pipeline === 'carvana' ? carvanaDecode(stageOutput(home, plan.pipeline, 'preprocess', 'transform')) : undefined;
          compact = await compactBytes(trainDir, decode);
        }
        if (!process.env.FLOW_SCALE_KEEP) fs.rmSync(home.dir, { recursive: true, force: true });
        fs.rmSync(root, { recursive: true, force: true });
      }
      const first = args.scales[0]!;
      const last = args.scales[args.scales.length - 1]!;
      const rows: string[][] = [];
      for (const [i, { step }] of STEPS.entries()) {
        const row = [step];
        for (const scale of args.scales) {
          const c = byScale.get(scale)![i]!;
          row.push(`${fmt((c.seconds / c.samples) * 1000, 0)} ms`, c.peakRssMiB === null ? '?' : `${c.peakRssMiB.toFixed(0)}`, mib(c.cacheBytes));
        }
        const a = byScale.get(first)![i]!;
        const b = byScale.get(last)![i]!;
        row.push(a.peakRssMiB && b.peakRssMiB ? `${fmt(b.peakRssMiB / a.peakRssMiB)}x` : '?', `${fmt(b.seconds / b.samples / (a.seconds / a.samples))}x`);
        const baseline = baselines.get(last)!;
        row.push(baseline.stages.includes(step) ? `${fmt(baseline.secondsPerSample / (b.seconds / b.samples))}x` : '-');
        row.push(duration((b.seconds / b.samples) * plan.full));
        rows.push(row);
      }
      const lastCosts = byScale.get(last)!;
      const total = lastCosts.reduce((sum, c) => sum + c.seconds / c.samples, 0) * plan.full;
      const baseline = baselines.get(last)!;
      tables.push({
        title: `scale: ${plan.pipeline} (${args.scales.map((s) => `${plan.base * s}`).join(' / ')} ${plan.unit}s = ${args.scales.map((s) => `${s}x`).join(' / ')})`,
        columns: [
          'stage',
          ...args.scales.flatMap((s) => [`${s}x s/${plan.unit}`, `${s}x peak RSS MiB`, `${s}x cache MiB`]),
          `RSS ${last}x/${first}x`,
          `cost/${plan.unit} ${last}x/${first}x`,
          `throughput vs baseline (${last}x)`,
          `projected, ${plan.full} ${plan.unit}s`,
        ],
        rows: rows.map((row) => row.map((cell) => cell.replace(/ ms$/, ' ms'))),
        notes: [
          `baseline (${last}x, same files, ${os.availableParallelism()} cores): ${baseline.name} ${fmt(baseline.secondsPerSample * 1000, 0)} ms per ${plan.unit}; throughput = baseline time / stage time per ${plan.unit} (goal >= 0.8x)`,
          `goal: peak RSS ${last}x/${first}x <= 1.25 for every stage; peak RSS is the flow process's VmHWM (engine + the newest stage; earlier stages are cache hits)`,
          `projected total for ${plan.full} ${plan.unit}s on this machine: ${duration(total)} (per-${plan.unit} cost at ${last}x x ${plan.full}; training: one epoch at ${plan.overrides[0]})`,
          compact
            ? `tensor bytes per sample (preprocess train output at ${first}x): ${fmt(compact.before / 1024, 1)} KiB as written today (float32 x) vs ${fmt(compact.after / 1024, 1)} KiB through lib/tensors' compact writer (x stored as ${compact.xDtype}) = ${fmt(compact.before / compact.after)}x smaller`
            : 'tensor bytes: not measured',
          `train reads its batches from disk (lib/tensors/random-access.ts): ${args.scales.map((s) => `${s}x ${fmt(trainSummaries.get(s)!.images_per_s, 1)} samples/s, input pipeline ${fmt(100 * trainSummaries.get(s)!.input_share, 1)}% of step time`).join('; ')}`,
          machineLine(),
        ],
      });
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  return tables;
}

if (isMainModule(import.meta.url)) {
  const argv = process.argv.slice(2);
  printTables(await run({ quick: argv.includes('--quick') }, argv));
}

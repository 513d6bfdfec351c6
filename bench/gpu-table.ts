// The one table bench/gpu.sh prints: flow on webgpu against PyTorch on the same GPU (the same U-Net, measured in
// the same call), flow's figure on 2 CPU cores of that machine, where one step's kernel time goes, and the
// carvana pipeline on the GPU. Reads what gpu.sh wrote into its output folder; a part that did not run is said so.
//   node dist/bench/gpu-table.js OUT_DIR
import fs from 'node:fs';
import path from 'node:path';
import { formatTable, type BenchTable } from './table.js';

interface TorchRow {
  torch: string;
  params: number;
  trainImagesPerSec: number;
  inferImagesPerSec: number;
  device?: string;
}

interface SpeedRow {
  size: number;
  batch: number;
  trainImagesPerSec: number;
  inferImagesPerSec: number;
  parameters: number;
  /** The PyTorch twin's measurement, or why it did not run. */
  torchTf32?: TorchRow | string;
  torchFp32?: TorchRow | string;
}

interface FlowRun {
  backend: { name: string; reason: string; adapter?: { vendor: string; architecture: string; description: string } };
  rows: SpeedRow[];
  profile: { size: number; batch: number; totalMs: number; kernels: { kernel: string; calls: number; ms: number }[] };
}

const dir = process.argv[2] ?? 'gpu-out';

function readJson(name: string): unknown {
  const file = path.join(dir, name);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as unknown) : null;
}

/** The twin's figures, or undefined (with the reason kept for the notes) when it did not run. */
function measured(value: TorchRow | string | undefined, why: string[]): TorchRow | undefined {
  if (typeof value === 'string') why.push(value);
  return typeof value === 'object' ? value : undefined;
}

const fixed = (value: number | undefined, digits = 1): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !(b > 0) ? '-' : `${(a / b).toFixed(2)}x`);

const flow = readJson('flow.json') as FlowRun | null;
const cpu = readJson('cpu2.json') as FlowRun | null;
const tables: BenchTable[] = [];

if (flow === null) {
  console.log(`no flow GPU figures in ${dir} (bench part did not run or failed)`);
} else {
  const torchProblems: string[] = [];
  const twin = flow.rows.map((r) => ({ tf32: measured(r.torchTf32, torchProblems), fp32: measured(r.torchFp32, torchProblems) }));
  const anyTwin = twin.find((t) => t.tf32 !== undefined)?.tf32;
  const adapter = flow.backend.adapter;
  const cpu256 = cpu?.rows.find((r) => r.size === 256);
  const gpu256 = flow.rows.find((r) => r.size === 256 && r.batch === 8);
  tables.push({
    title: `U-Net training on one GPU: flow (${flow.backend.name}) vs PyTorch ${anyTwin?.torch ?? '(not run)'} on the same GPU, same call`,
    columns: ['px', 'batch', `flow ${flow.backend.name} img/s`, 'PyTorch TF32 img/s', 'flow / PyTorch TF32', 'PyTorch fp32 img/s', 'flow / PyTorch fp32', 'flow infer img/s', 'PyTorch infer img/s', 'infer ratio'],
    rows: flow.rows.map((r, i) => {
      const t = twin[i]!.tf32;
      const f = twin[i]!.fp32;
      return [String(r.size), String(r.batch), fixed(r.trainImagesPerSec), fixed(t?.trainImagesPerSec), ratio(r.trainImagesPerSec, t?.trainImagesPerSec), fixed(f?.trainImagesPerSec), ratio(r.trainImagesPerSec, f?.trainImagesPerSec), fixed(r.inferImagesPerSec), fixed(t?.inferImagesPerSec), ratio(r.inferImagesPerSec, t?.inferImagesPerSec)];
    }),
    notes: [
      `the Carvana U-Net: ${flow.rows[0]?.parameters ?? '?'} parameters in flow, ${anyTwin?.params ?? '?'} in the PyTorch twin (bench/unet_torch.py); Adam, BCE + Dice, the same settings from flow's code`,
      `adapter: ${adapter ? `${adapter.vendor} ${adapter.architecture} (${adapter.description})` : 'none recorded'}; PyTorch device ${anyTwin?.device ?? '-'}`,
      ...[...new Set(torchProblems)].map((why) => `PyTorch did not run: ${why}`),
      `PyTorch TF32: its default for cuDNN convolutions (TF32 tensor cores); fp32: TF32 off, the same arithmetic as WebGPU's f32 shaders`,
      cpu256
        ? `flow on 2 CPU cores of this machine (wasm, ${cpu?.backend.reason.includes('native') ? 'native' : 'as installed'}), 256 px batch 8: ${fixed(cpu256.trainImagesPerSec, 2)} img/s; webgpu at 256 px batch 8 is ${ratio(gpu256?.trainImagesPerSec, cpu256.trainImagesPerSec)} that (goal ≥ 20x)`
        : 'flow on 2 CPU cores: not measured in this call',
    ],
  });
  const total = flow.profile.totalMs;
  tables.push({
    title: `Where one training step's GPU time goes (${flow.profile.size} px, batch ${flow.profile.batch}; tf.profile kernel times)`,
    columns: ['kernel', 'calls', 'ms', 'share'],
    rows: flow.profile.kernels.slice(0, 12).map((k) => [k.kernel, String(k.calls), fixed(k.ms, 2), total > 0 ? `${((100 * k.ms) / total).toFixed(1)}%` : '-']),
    notes: [`kernel time summed over the step: ${fixed(total, 1)} ms`],
  });
}

const metrics = readJson('pipeline-metrics.json') as { dice?: number; iou?: number; hd95?: number } | null;
const env = readJson('pipeline-env.json') as { stages?: Record<string, { backend?: string }>; backend?: string } | null;
const logFile = path.join(dir, 'pipeline.log');
const wall = fs.existsSync(logFile) ? /pipeline wall time: (\d+) s/.exec(fs.readFileSync(logFile, 'utf8'))?.[1] : undefined;
if (metrics !== null) {
  tables.push({
    title: 'pipelines/carvana.yaml on the GPU (256 px)',
    columns: ['held-out Dice', 'IoU', 'HD95', 'wall time'],
    rows: [[fixed(metrics.dice, 4), fixed(metrics.iou, 4), fixed(metrics.hd95, 2), wall ? `${wall} s` : '-']],
    notes: [`env.json: ${JSON.stringify(env).slice(0, 300)}`],
  });
} else {
  console.log(`no pipeline metrics in ${dir}`);
}
for (const table of tables) console.log(`${formatTable(table)}\n`);

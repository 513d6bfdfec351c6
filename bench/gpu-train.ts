// U-Net training speed on a GPU through the webgpu backend, as the train stage runs it (LocalGradientEngine +
// TrainOptimizer, the Carvana U-Net and settings of pipelines/carvana.yaml: filters 16, depth 3, no batch norm,
// Adam, BCE + Dice, its augmentation), at several sizes and batches; plus validation (inference) images/s and a
// per-kernel profile of one training step. With --torch PYTHON each row also runs bench/unet_torch.py (the same
// network, loss and optimiser settings, from flow's own code) on the same GPU, TF32 on and off, in the same run.
// bench/gpu.sh runs it on a GPU machine and prints the ratios (bench/gpu-table.ts).
// Run: node dist/bench/gpu-train.js [--backend webgpu] [--sizes 128,256,512] [--batches 8,16] [--steps N]
//      [--warmup N] [--profile-size 256 (0: none)] [--torch python3] [--json FILE]
// The 2-core CPU figure the GPU is compared with: node dist/bench/gpu-train.js --backend wasm --sizes 256
//      --batches 8 --steps 3 --warmup 1 --profile-size 0 --json cpu2.json   (on the 2-core machine)
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../lib/tf/backend.js';
import { LocalGradientEngine, trainableVariables } from '../lib/train/gradients.js';
import { TrainOptimizer } from '../lib/train/optimizers.js';
import { argValue, augmentedBatches, carvanaTrainSettings, syntheticData, timeTrainingSteps, timeValidation, withBenchModel } from './train-parallel.js';
import { runTorchTwin, type TorchMeasurement } from './train-speed.js';

export interface GpuRow {
  backend: string;
  size: number;
  batch: number;
  steps: number;
  trainImagesPerSec: number;
  /** Median seconds of one timed step. */
  stepSeconds: number;
  inferImagesPerSec: number;
  finalLoss: number;
  parameters: number;
  /** The PyTorch twin on the same GPU and settings, TF32 on and off (or why it did not run). */
  torchTf32?: TorchMeasurement | string;
  torchFp32?: TorchMeasurement | string;
}

export interface KernelShare {
  kernel: string;
  calls: number;
  ms: number;
}

function numbers(text: string | undefined, fallback: number[]): number[] {
  return text ? text.split(',').map(Number) : fallback;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function measure(backend: string, size: number, batch: number, warmup: number, steps: number): Promise<GpuRow> {
  const settings = { ...carvanaTrainSettings(), batch };
  return withBenchModel(size, settings, async (model, _dir, geometry) => {
    const engine = new LocalGradientEngine(model, geometry);
    const data = syntheticData(2 * batch, size, 7);
    const timing = await timeTrainingSteps(engine, model, settings, augmentedBatches(data, geometry.shape, settings, 11), warmup, steps);
    await timeValidation(engine, geometry, data, batch); // compiles the inference shaders
    const inferImagesPerSec = await timeValidation(engine, geometry, data, batch);
    return {
      backend,
      size,
      batch,
      steps,
      trainImagesPerSec: timing.imagesPerSec,
      stepSeconds: median(timing.stepSeconds),
      inferImagesPerSec,
      finalLoss: timing.finalLoss,
      parameters: model.countParams(),
    };
  });
}

/** Kernel times of one training step (after warm-up), summed by kernel name, largest first. */
async function profileStep(size: number, batch: number): Promise<KernelShare[]> {
  const settings = { ...carvanaTrainSettings(), batch };
  return withBenchModel(size, settings, async (model, _dir, geometry) => {
    const engine = new LocalGradientEngine(model, geometry);
    const optimizer = new TrainOptimizer({ kind: settings.optimizer, momentum: settings.momentum, weightDecay: settings.weightDecay }, trainableVariables(model));
    const data = syntheticData(batch, size, 7);
    const step = () => {
      const result = engine.computeSync(data.x, data.y, batch);
      optimizer.apply(result.grads, settings.lr);
      tf.dispose([result.loss, result.probabilities, ...result.grads]);
    };
    for (let i = 0; i < 2; i++) step();
    const profile = await tf.profile(step);
    optimizer.dispose();
    const byKernel = new Map<string, KernelShare>();
    for (const kernel of profile.kernels) {
      // `<op>__op` entries wrap the kernels an op runs (fused.conv2d's FusedConv2D): counting both would double it.
      if (kernel.name.endsWith('__op')) continue;
      const entry = byKernel.get(kernel.name) ?? { kernel: kernel.name, calls: 0, ms: 0 };
      entry.calls += 1;
      entry.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
      byKernel.set(kernel.name, entry);
    }
    return [...byKernel.values()].sort((a, b) => b.ms - a.ms);
  });
}

async function main(): Promise<void> {
  const backend = (argValue('--backend') ?? 'webgpu') as BackendName;
  const sizes = numbers(argValue('--sizes'), [128, 256, 512]);
  const batches = numbers(argValue('--batches'), [8, 16]);
  const steps = Number(argValue('--steps') ?? 10);
  const warmup = Number(argValue('--warmup') ?? 3);
  const profileSize = Number(argValue('--profile-size') ?? 256);
  const python = argValue('--torch');
  const info = await initBackend(backend);
  console.log(`backend ${info.name} ${info.version}: ${info.reason}`);
  const rows: GpuRow[] = [];
  for (const size of sizes) {
    for (const batch of batches) {
      const row = await measure(info.name, size, batch, warmup, steps);
      if (python !== undefined) {
        const plan = { size, batch, warmup, steps };
        row.torchTf32 = runTorchTwin(python, { ...carvanaTrainSettings(), batch }, plan, 1, { device: 'cuda', tf32: true });
        row.torchFp32 = runTorchTwin(python, { ...carvanaTrainSettings(), batch }, plan, 1, { device: 'cuda', tf32: false });
      }
      rows.push(row);
      console.log(JSON.stringify({ type: 'row', ...row }));
    }
  }
  const kernels = profileSize > 0 ? await profileStep(profileSize, batches[0]!) : [];
  const total = kernels.reduce((sum, k) => sum + k.ms, 0);
  console.log(JSON.stringify({ type: 'profile', size: profileSize, batch: batches[0], totalMs: total, kernels: kernels.slice(0, 15) }));
  const out = argValue('--json');
  if (out) fs.writeFileSync(out, JSON.stringify({ backend: info, rows, profile: { size: profileSize, batch: batches[0], totalMs: total, kernels } }, null, 1));
}

await main();
// dawn.node keeps the event loop busy while a WebGPU device exists: the process would never end by itself.
process.exit(0);

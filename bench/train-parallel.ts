// Data-parallel training speed: images/s of the training step (forward, backward, Adam update) with 1 worker
// (the main thread alone) and 2 (main thread + 1 worker thread, gradients averaged), same model, data and run.
// Carvana-like U-Net (3 channels in, 1 sigmoid out, filters 16, depth 3 → 16/32/64), batch 8, BCE + Dice.
// Usage: node --import tsx bench/train-parallel.ts [sizes=64,128] [steps=6] [backend=wasm]
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../lib/tf/backend.js';
import { buildUNet2d } from '../lib/tf/unet.js';
import { loadModelFromDir, saveModelToDir } from '../lib/tf/model-io.js';
import { LocalGradientEngine, trainableVariables, type BatchGeometry, type GradientEngine } from '../lib/train/gradients.js';
import { DataParallelEngine } from '../lib/train/parallel.js';
import { TrainOptimizer } from '../lib/train/optimizers.js';
import { Rng } from '../lib/rng.js';
import { makeTempDir } from '../test/helpers/paths.js';
import * as tf from '@tensorflow/tfjs-core';

const sizes = (process.argv[2] ?? '64,128').split(',').map(Number);
const steps = Number(process.argv[3] ?? 6);
const backendName = (process.argv[4] ?? 'wasm') as 'wasm' | 'cpu';
const BATCH = 8;
const WARMUP = 2;

const backend = await initBackend(backendName);

async function measure(size: number, workers: number): Promise<number> {
  const dir = path.join(makeTempDir('flow-bench-'), 'model');
  const built = buildUNet2d({ inputShape: [size, size, 3], classes: 1, filters: 16, depth: 3, batchNorm: true, seed: 1 });
  await saveModelToDir(built, dir);
  built.dispose();
  const model = await loadModelFromDir(dir);
  const geometry: BatchGeometry = { shape: [size, size, 3], classes: 1, loss: 'bce_dice' };
  const engine: GradientEngine =
    workers > 1 ? await DataParallelEngine.start(model, dir, geometry, workers, backend.name) : new LocalGradientEngine(model, geometry);
  const optimizer = new TrainOptimizer({ kind: 'adam', momentum: 0, weightDecay: 0 }, trainableVariables(model));
  const rng = new Rng(3);
  const x = Float32Array.from({ length: BATCH * size * size * 3 }, () => rng.normal());
  const y = Uint8Array.from({ length: BATCH * size * size }, () => (rng.next() < 0.3 ? 1 : 0));
  let start = 0;
  for (let step = 0; step < WARMUP + steps; step++) {
    if (step === WARMUP) start = performance.now();
    const result = await engine.compute(x, y, BATCH);
    optimizer.apply(result.grads, 1e-3);
    tf.dispose(result.grads);
  }
  const seconds = (performance.now() - start) / 1000;
  await engine.dispose();
  optimizer.dispose();
  model.dispose();
  return (steps * BATCH) / seconds;
}

console.log(`backend ${backend.name} ${backend.version}, ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? '?'}), batch ${BATCH}, ${steps} timed steps after ${WARMUP} warm-up`);
console.log('| size | 1 worker img/s | 2 workers img/s | speed-up |');
console.log('|---|---|---|---|');
for (const size of sizes) {
  const one = await measure(size, 1);
  const two = await measure(size, 2);
  console.log(`| ${size} | ${one.toFixed(1)} | ${two.toFixed(1)} | ${(two / one).toFixed(2)}x |`);
}

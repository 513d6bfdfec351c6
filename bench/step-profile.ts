// Where one training step (and one inference pass) of the Carvana U-Net goes, per kernel: tfjs's profiler
// (tf.profile: each kernel the engine runs, with its time on the wasm backend) over the train stage's gradient
// step on one thread (LocalGradientEngine.computeSync + TrainOptimizer.apply), and the native addon's own timers
// for the phases inside its convolutions (im2col, GEMM, col2im, padding, direct kernels, bias + activation).
// It picks what to speed up next; the shares are measured in this run, there is no baseline to compare with.
// Run: node --import tsx bench/step-profile.ts [--quick] [--sizes 64,128] [--top 14]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/tf/backend.js';
import { nativeConvTimers } from '../lib/tf/native-conv.js';
import { LocalGradientEngine, evaluateBatch, trainableVariables } from '../lib/train/gradients.js';
import { TrainOptimizer } from '../lib/train/optimizers.js';
import { argValue, carvanaTrainSettings, describeSettings, syntheticData, withBenchModel } from './train-parallel.js';
import { isMainModule, machineLine, printTables, quickFromArgv, type BenchOptions, type BenchTable } from './table.js';

export interface StepProfileOptions extends BenchOptions {
  sizes?: number[];
  /** Kernels listed per table (the rest are summed into one row). */
  top?: number;
}

interface KernelTotal {
  calls: number;
  ms: number;
}

/** Runs `work` under tf.profile and sums kernelTimeMs per kernel name. */
async function profileKernels(work: () => tf.TensorContainer | Promise<tf.TensorContainer>): Promise<{ totals: Map<string, KernelTotal>; wallMs: number }> {
  const start = performance.now();
  const info = await tf.profile(work);
  const wallMs = performance.now() - start;
  const totals = new Map<string, KernelTotal>();
  for (const kernel of info.kernels) {
    // "<op>__op" records wrap the kernels an op with a custom gradient runs (fusedConv2d__op around FusedConv2D):
    // counting them too would count those kernels twice.
    if (kernel.name.endsWith('__op')) continue;
    const time = await kernel.kernelTimeMs;
    const ms = typeof time === 'number' ? time : 0;
    const total = totals.get(kernel.name) ?? { calls: 0, ms: 0 };
    total.calls += 1;
    total.ms += ms;
    totals.set(kernel.name, total);
  }
  return { totals, wallMs };
}

function kernelRows(totals: Map<string, KernelTotal>, wallMs: number, top: number): string[][] {
  const sorted = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  const sum = sorted.reduce((acc, [, t]) => acc + t.ms, 0);
  const rows = sorted.slice(0, top).map(([name, t]) => [name, String(t.calls), t.ms.toFixed(1), `${((100 * t.ms) / wallMs).toFixed(1)}%`]);
  const rest = sorted.slice(top);
  if (rest.length > 0) {
    const ms = rest.reduce((acc, [, t]) => acc + t.ms, 0);
    rows.push([`${rest.length} other kernels`, String(rest.reduce((acc, [, t]) => acc + t.calls, 0)), ms.toFixed(1), `${((100 * ms) / wallMs).toFixed(1)}%`]);
  }
  rows.push(['(outside kernels: JS, tape, allocation)', '-', Math.max(0, wallMs - sum).toFixed(1), `${((100 * Math.max(0, wallMs - sum)) / wallMs).toFixed(1)}%`]);
  rows.push(['step wall time', '-', wallMs.toFixed(1), '100%']);
  return rows;
}

function phaseRows(timers: Record<string, number> | null): string[][] {
  if (timers === null) return [];
  return Object.entries(timers)
    .filter(([, seconds]) => seconds > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([phase, seconds]) => [`native: ${phase}`, '-', (seconds * 1000).toFixed(1), '-']);
}

export async function run(options: StepProfileOptions): Promise<BenchTable[]> {
  const info = await initBackend('wasm');
  const settings = carvanaTrainSettings();
  const sizes = options.sizes ?? (options.quick ? [64] : [64, 128, 256]);
  const top = options.top ?? 14;
  // One thread's share of the default 2-worker batch: what each worker's step runs.
  const batch = Math.ceil(settings.batch / 2);
  const tables: BenchTable[] = [];
  for (const size of sizes) {
    await withBenchModel(size, settings, async (model, _dir, geometry) => {
      const engine = new LocalGradientEngine(model, geometry);
      const optimizer = new TrainOptimizer({ kind: settings.optimizer, momentum: settings.momentum, weightDecay: settings.weightDecay }, trainableVariables(model));
      const data = syntheticData(batch, size, 5);
      const step = () => {
        const { loss, grads, probabilities } = engine.computeSync(data.x, data.y, batch);
        optimizer.apply(grads, settings.lr);
        tf.dispose([loss, probabilities, ...grads]);
        return [];
      };
      try {
        step(); // warm-up: kernel setup, heap growth
        nativeConvTimers();
        const train = await profileKernels(step);
        const trainPhases = nativeConvTimers();
        await evaluateBatch(model, geometry, data); // warm-up
        nativeConvTimers();
        const infer = await profileKernels(async () => {
          await evaluateBatch(model, geometry, data);
          return [];
        });
        const inferPhases = nativeConvTimers();
        const columns = ['kernel', 'calls', 'ms', 'share of wall'];
        tables.push({
          title: `One training step per kernel, ${size} px, batch ${batch} on one thread`,
          columns,
          rows: [...kernelRows(train.totals, train.wallMs, top), ...phaseRows(trainPhases)],
          notes: [
            machineLine(),
            `${describeSettings(settings)}; batch ${batch} = one worker's half of the default batch ${settings.batch}; kernels: ${info.kernels}`,
            'tf.profile over engine.computeSync (forward, loss, backward) + TrainOptimizer.apply, after one warm-up step; native rows: the addon\'s own timers over the same step (inside Conv2D/FusedConv2D/gradients)',
          ],
        });
        tables.push({
          title: `One inference pass per kernel, ${size} px, batch ${batch}`,
          columns,
          rows: [...kernelRows(infer.totals, infer.wallMs, top), ...phaseRows(inferPhases)],
          notes: ['tf.profile over evaluateBatch (forward + loss, outputs read back), after one warm-up pass'],
        });
      } finally {
        optimizer.dispose();
      }
    });
  }
  return tables;
}

if (isMainModule(import.meta.url)) {
  const sizes = argValue('--sizes')?.split(',').filter((s) => s !== '').map(Number);
  const top = argValue('--top');
  printTables(await run({ quick: quickFromArgv(), ...(sizes ? { sizes } : {}), ...(top ? { top: Number(top) } : {}) }));
}

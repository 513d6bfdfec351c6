// Bytes per sample of the shipped samples' tensor datasets: as preprocess writes them today (float32 x) vs the
// same samples through lib/tensors' compact writer (dtype auto; Carvana's x as uint8 with its normalisation as
// the decode affine, which reads back bit-identical). Runs both sample pipelines up to preprocess via the CLI.
// Usage: node dist/bench/tensor-bytes.js
import path from 'node:path';
import fs from 'node:fs';
import { samplesDir } from '../test/helpers/paths.js';
import { carvanaDecode, compactBytes, runSteps, stageOutput, STEPS } from './scale.js';
import { isMainModule, machineLine, printTables, type BenchTable } from './table.js';

export async function run(): Promise<BenchTable[]> {
  const rows: string[][] = [];
  for (const pipeline of ['carvana', 'brats'] as const) {
    const { home } = await runSteps(pipeline, path.join(samplesDir, pipeline), 0, [], STEPS.slice(0, 4));
    try {
      for (const side of ['train', 'val']) {
        const dir = stageOutput(home, pipeline, 'preprocess', side);
        const decode = pipeline === 'carvana' ? carvanaDecode(stageOutput(home, pipeline, 'preprocess', 'transform')) : undefined;
        const r = await compactBytes(dir, decode);
        rows.push([`${pipeline} ${side}`, r.xDtype, (r.before / 1024).toFixed(1), (r.after / 1024).toFixed(1), `${(r.before / r.after).toFixed(2)}x`]);
      }
    } finally {
      fs.rmSync(home.dir, { recursive: true, force: true });
    }
  }
  return [
    {
      title: 'tensor bytes per sample: float32 as written today vs compact storage (shipped samples)',
      columns: ['dataset', 'x stored as', 'today KiB/sample', 'compact KiB/sample', 'smaller by'],
      rows,
      notes: ['x and y tensor bytes (Example framing excluded); compact = TensorDatasetWriter with dtype auto (+ decode for Carvana)', machineLine()],
    },
  ];
}

if (isMainModule(import.meta.url)) printTables(await run());

// Where validation batches come from. The train stage streams them from the validation dataset on disk, batch by
// batch, so a large validation set (BraTS: every slice or every brain-box tile of the held-out patients) never
// has to fit in memory; tests and benches hand in arrays already in memory. Either way the batches are the same
// items in the same order, so the metrics are identical.
import { elementCount, readTensorDataset, readTensorSpec, classIndices } from '../tensors/dataset.js';
import type { EvalBatch } from './gradients.js';
import { itemSizes } from './gradients.js';

/** A dataset held in memory, sample-major (as lib/tensors/dataset.ts loads it). */
export interface TrainData {
  x: Float32Array;
  y: Uint8Array;
  count: number;
}

/** Validation items in a fixed order, produced in batches. */
export interface ValidationSource {
  count: number;
  batches(batchSize: number): AsyncIterable<EvalBatch>;
}

/** Validation over arrays in memory ([count, ...shape] items). */
export function inMemoryValidation(data: TrainData, shape: readonly number[]): ValidationSource {
  const { xSize, ySize } = itemSizes(shape);
  return {
    count: data.count,
    async *batches(batchSize: number): AsyncIterable<EvalBatch> {
      for (let start = 0; start < data.count; start += batchSize) {
        const count = Math.min(batchSize, data.count - start);
        yield { x: data.x.subarray(start * xSize, (start + count) * xSize), y: data.y.subarray(start * ySize, (start + count) * ySize), count };
      }
    },
  };
}

/** Validation streamed from a tensor dataset folder: one batch in memory at a time (plus what is in flight). */
export async function streamedValidation(dir: string): Promise<ValidationSource> {
  const spec = await readTensorSpec(dir);
  const xSize = elementCount(spec.x.shape);
  const ySize = elementCount(spec.y.shape);
  return {
    count: spec.count,
    async *batches(batchSize: number): AsyncIterable<EvalBatch> {
      let x = new Float32Array(batchSize * xSize);
      let y = new Uint8Array(batchSize * ySize);
      let count = 0;
      for await (const sample of readTensorDataset(dir)) {
        x.set(sample.x, count * xSize);
        y.set(classIndices(dir, sample), count * ySize);
        count++;
        if (count === batchSize) {
          yield { x, y, count };
          x = new Float32Array(batchSize * xSize);
          y = new Uint8Array(batchSize * ySize);
          count = 0;
        }
      }
      if (count > 0) yield { x: x.subarray(0, count * xSize), y: y.subarray(0, count * ySize), count };
    },
  };
}

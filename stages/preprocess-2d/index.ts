// Step 4 for Carvana: resize photos (bilinear) and masks (nearest → 0/1) to the model size, split by car,
// normalise with the train split's per-channel statistics (or ImageNet's, or none), and write the train and
// val tensor datasets plus transform.json (what predict replays) and split.json.
// One decode per image: resized 8-bit pixels go to a scratch file, so the train statistics are known before
// anything is normalised and memory stays flat however many images there are.
import fs from 'node:fs';
import path from 'node:path';
import { defineStage } from '../../engine/stage.js';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { readExamples, readRecordSpec } from '../../lib/tfrecord/spec.js';
import { TensorDatasetWriter } from '../../lib/tensors/dataset.js';
import { readCarvanaRecord } from '../../lib/datasets/carvana.js';
import { splitItems } from '../../lib/preprocess/split.js';
import { ChannelStats, normalizeFor, normalizePixels, resizeMask, resizePhoto, type NormalizeMode, type Transform2d } from '../../lib/preprocess/image2d.js';

export interface Preprocess2dParams {
  size: [number, number];
  val_fraction: number;
  seed: number;
  normalize: NormalizeMode;
}

interface ScratchItem {
  id: string;
  group: string;
  height: number;
  width: number;
  source: string;
  offset: number;
}

export default defineStage<Preprocess2dParams>({
  kind: 'preprocess.2d',
  version: '1',
  description: 'Resize, split by car and normalise Carvana records into train/val tensor datasets, with transform.json and split.json.',
  inputs: {
    data: { description: "tfrecord.read's folder of verified Carvana shards" },
  },
  outputs: {
    train: { description: 'Training tensor dataset: x float32 [H,W,3], y uint8 [H,W,1] in {0,1}', type: 'dir' },
    val: { description: 'Validation tensor dataset, same layout, other cars', type: 'dir' },
    transform: { description: 'transform.json: size, resize kernels, normalisation (what predict replays)', type: 'file' },
    split: { description: 'split.json: seed, train/val car ids and sample ids', type: 'file' },
  },
  async run(ctx) {
    const dataDir = ctx.inputs.data;
    if (dataDir === undefined) throw new Error(`stage ${ctx.stageName}: input "data" (tfrecord.read's folder) is missing`);
    const { size, val_fraction: valFraction, seed, normalize } = ctx.params;
    if (!Array.isArray(size) || size.length !== 2 || size.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`stage ${ctx.stageName}: size must be [height, width] in pixels, got ${JSON.stringify(size)}`);
    }
    const spec = await readRecordSpec(dataDir);
    if (spec.dataset !== 'carvana') {
      throw new Error(`stage ${ctx.stageName}: ${path.join(dataDir, 'spec.json')} holds ${spec.dataset} records; preprocess.2d reads Carvana records (use preprocess.brats for BraTS)`);
    }

    // Pass 1: decode + resize each record once into the scratch file; per-car statistics on the way.
    fs.mkdirSync(ctx.workDir, { recursive: true });
    const scratchFile = path.join(ctx.workDir, 'resized.u8');
    const scratch = fs.openSync(scratchFile, 'w+');
    const itemBytes = size[0] * size[1] * 4; // RGB + mask
    const items: ScratchItem[] = [];
    const statsByGroup = new Map<string, ChannelStats>();
    try {
      for await (const view of readExamples(dataDir)) {
        if (ctx.signal.aborted) return { status: 'interrupted' };
        const where = `${path.join(dataDir, view.file)} record ${view.index}`;
        const record = readCarvanaRecord(view.features);
        if (record.mask === null) throw new Error(`${where} (${record.id}): no mask/encoded; training needs a mask for every image`);
        const rgb = await resizePhoto(record.image, size, `${where} (${record.id}): image/encoded`);
        const mask = await resizeMask(record.mask, size, `${where} (${record.id}): mask/encoded`);
        const offset = items.length * itemBytes;
        fs.writeSync(scratch, rgb.data, 0, rgb.data.length, offset);
        fs.writeSync(scratch, mask, 0, mask.length, offset + rgb.data.length);
        let stats = statsByGroup.get(record.group);
        if (stats === undefined) statsByGroup.set(record.group, (stats = new ChannelStats()));
        stats.add(rgb.data);
        items.push({ id: record.id, group: record.group, height: record.height, width: record.width, source: `${view.file}#${view.index}`, offset });
      }
      if (items.length === 0) throw new Error(`stage ${ctx.stageName}: ${dataDir} holds no records`);

      const split = splitItems(items, valFraction, seed);
      const trainStats = new ChannelStats();
      for (const group of split.train) trainStats.merge(statsByGroup.get(group)!);
      const transform: Transform2d = {
        dataset: 'carvana',
        size: [size[0], size[1]],
        channels: 3,
        resize: { image: 'linear', mask: 'nearest' },
        normalize: normalizeFor(normalize, trainStats),
      };

      // Pass 2: normalise and write each item to its side of the split, in record order.
      const valGroups = new Set(split.val);
      const tensorSpec = (side: 'train' | 'val') => ({
        x: { shape: [size[0], size[1], 3], dtype: 'float32' as const },
        y: { shape: [size[0], size[1], 1], dtype: 'uint8' as const },
        classes: 1,
        meta: { dataset: 'carvana', split: side, size: [size[0], size[1]], normalize: transform.normalize },
      });
      const writers = { train: await TensorDatasetWriter.create(ctx.outs.train!, tensorSpec('train')), val: await TensorDatasetWriter.create(ctx.outs.val!, tensorSpec('val')) };
      try {
        const buffer = new Uint8Array(itemBytes);
        const rgbBytes = size[0] * size[1] * 3;
        for (const item of items) {
          if (ctx.signal.aborted) {
            await writers.train.abort();
            await writers.val.abort();
            return { status: 'interrupted' };
          }
          fs.readSync(scratch, buffer, 0, itemBytes, item.offset);
          const x = normalizePixels(buffer.subarray(0, rgbBytes), transform.normalize);
          const y = buffer.slice(rgbBytes);
          await writers[valGroups.has(item.group) ? 'val' : 'train'].add({ id: item.id, x, y, info: { group: item.group, height: item.height, width: item.width, source: item.source } });
        }
        await writers.train.close();
        await writers.val.close();
      } catch (error) {
        await writers.train.abort().catch(() => undefined);
        await writers.val.abort().catch(() => undefined);
        throw error;
      }
      await writeJsonAtomic(ctx.outs.transform!, transform);
      await writeJsonAtomic(ctx.outs.split!, split);
      ctx.print(
        `${split.trainIds.length} train / ${split.valIds.length} val images (${split.train.length} / ${split.val.length} cars) at ${size[0]}x${size[1]}, ` +
          `normalize ${normalize} mean [${transform.normalize.mean.map((m) => m.toFixed(3)).join(', ')}]`,
      );
      return { status: 'done', summary: { train: split.trainIds.length, val: split.valIds.length, trainCars: split.train.length, valCars: split.val.length } };
    } finally {
      fs.closeSync(scratch);
      fs.rmSync(scratchFile, { force: true });
    }
  },
});

// Step 4 for 2D datasets (Carvana, image pairs): resize pictures (bilinear, converted to the declared channel
// count) and masks (nearest, stored value → class index through the label map in spec.json) to the model
// size, split by group (car, patient, lesion ...; cases of an official test list stay out of training),
// normalise with the train split's per-channel statistics (or ImageNet's, or none), and write the train and
// val tensor datasets plus transform.json (what predict replays) and split.json.
// One decode per image: resized 8-bit pixels go to a scratch file, so the train statistics are known before
// anything is normalised and memory stays flat however many images there are.
import fs from 'node:fs';
import path from 'node:path';
import { defineStage } from '../../engine/stage.js';
import { readExamples } from '../../lib/tfrecord/spec.js';
import { TensorDatasetWriter } from '../../lib/tensors/dataset.js';
import { readImage2dRecord } from '../../lib/datasets/image2d/records.js';
import { getDatasetKind } from '../../lib/datasets/registry.js';
import { modelChannels, readDatasetSpec, splitContract, transform2dContract, writeContract } from '../../lib/contracts/index.js';
import { IGNORE_INDEX } from '../../lib/contracts/labels.js';
import { splitItems } from '../../lib/preprocess/split.js';
import { ChannelStats, normalizeFor, normalizePixels, resizeMask, resizePhoto, type NormalizeMode, type Transform2d } from '../../lib/preprocess/image2d.js';

export interface Preprocess2dParams {
  size: [number, number];
  val_fraction: number;
  seed: number;
  normalize: NormalizeMode;
  /** Default 3 (the schema's default; optional for callers that build params by hand). */
  channels?: 1 | 3;
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
  // 2: any 2D dataset kind; masks through the label map; channels; official test cases kept out.
  version: '2',
  description: 'Resize, split by group and normalise 2D records (Carvana, image pairs) into train/val tensor datasets, with transform.json and split.json.',
  inputs: {
    data: { description: "tfrecord.read's folder of verified 2D shards (image/encoded + mask/encoded)" },
  },
  outputs: {
    train: { description: 'Training tensor dataset: x float32 [H,W,C], y uint8 [H,W,1] class indices (binary: 0/1)', type: 'dir' },
    val: { description: 'Validation tensor dataset, same layout, other groups', type: 'dir' },
    transform: { description: 'transform.json: size, channels, resize kernels, normalisation, label map (what predict replays)', type: 'file' },
    split: { description: 'split.json: seed, train/val (and official test) groups and sample ids', type: 'file' },
  },
  async run(ctx) {
    const dataDir = ctx.inputs.data;
    if (dataDir === undefined) throw new Error(`stage ${ctx.stageName}: input "data" (tfrecord.read's folder) is missing`);
    const { size, val_fraction: valFraction, seed, normalize } = ctx.params;
    const channels = ctx.params.channels ?? 3;
    if (!Array.isArray(size) || size.length !== 2 || size.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`stage ${ctx.stageName}: size must be [height, width] in pixels, got ${JSON.stringify(size)}`);
    }
    const spec = await readDatasetSpec(dataDir);
    if (getDatasetKind(spec.dataset, path.join(dataDir, 'spec.json')).records !== 'image2d') {
      throw new Error(`stage ${ctx.stageName}: ${path.join(dataDir, 'spec.json')} holds ${spec.dataset} volume records; preprocess.2d reads 2D picture/mask records (use preprocess.brats for BraTS)`);
    }
    const labels = spec.labels;

    // Pass 1: decode + resize each record once into the scratch file; per-car statistics on the way.
    fs.mkdirSync(ctx.workDir, { recursive: true });
    const scratchFile = path.join(ctx.workDir, 'resized.u8');
    const scratch = fs.openSync(scratchFile, 'w+');
    const itemBytes = size[0] * size[1] * (channels + 1); // picture + mask
    const items: ScratchItem[] = [];
    const statsByGroup = new Map<string, ChannelStats>();
    const testGroups = new Set<string>();
    try {
      for await (const view of readExamples(dataDir)) {
        if (ctx.signal.aborted) return { status: 'interrupted' };
        const where = `${path.join(dataDir, view.file)} record ${view.index}`;
        const record = readImage2dRecord(view.features);
        if (record.mask === null) throw new Error(`${where} (${record.id}): no mask/encoded; training needs a mask for every image`);
        if (record.subset === 'test') testGroups.add(record.group);
        const rgb = await resizePhoto(record.image, size, `${where} (${record.id}): image/encoded`, channels);
        const mask = await resizeMask(record.mask, size, labels, `${where} (${record.id}): mask/encoded`);
        const offset = items.length * itemBytes;
        fs.writeSync(scratch, rgb.data, 0, rgb.data.length, offset);
        fs.writeSync(scratch, mask, 0, mask.length, offset + rgb.data.length);
        let stats = statsByGroup.get(record.group);
        if (stats === undefined) statsByGroup.set(record.group, (stats = new ChannelStats(channels)));
        stats.add(rgb.data);
        items.push({ id: record.id, group: record.group, height: record.height, width: record.width, source: `${view.file}#${view.index}`, offset });
      }
      if (items.length === 0) throw new Error(`stage ${ctx.stageName}: ${dataDir} holds no records`);

      // A group with any case on the official test list is test as a whole: no leak through the group.
      const trainable = items.filter((item) => !testGroups.has(item.group));
      if (trainable.length === 0) throw new Error(`stage ${ctx.stageName}: every record of ${dataDir} is on the official test list; nothing is left to train on`);
      const split = {
        ...splitItems(trainable, valFraction, seed),
        ...(testGroups.size > 0 ? { test: [...testGroups].sort(), source: 'seeded train/val; test from the layout\'s list file' } : {}),
      };
      const trainStats = new ChannelStats(channels);
      for (const group of split.train) trainStats.merge(statsByGroup.get(group)!);
      const transform: Transform2d = {
        dataset: spec.dataset,
        labels,
        size: [size[0], size[1]],
        channels,
        resize: { image: 'linear', mask: 'nearest' },
        normalize: normalizeFor(normalize, trainStats, channels),
      };

      // Pass 2: normalise and write each item to its side of the split, in record order.
      const valGroups = new Set(split.val);
      const tensorSpec = (side: 'train' | 'val') => ({
        x: { shape: [size[0], size[1], channels], dtype: 'float32' as const },
        y: { shape: [size[0], size[1], 1], dtype: 'uint8' as const },
        classes: modelChannels(labels),
        meta: {
          dataset: spec.dataset,
          split: side,
          size: [size[0], size[1]],
          normalize: transform.normalize,
          classes: labels.classes.map((c) => c.name),
          // Masks hold this index where the label map's `ignore` values were: train leaves those pixels out.
          ...(labels.ignore.length > 0 ? { ignore_index: IGNORE_INDEX } : {}),
        },
      });
      const writers = { train: await TensorDatasetWriter.create(ctx.outs.train!, tensorSpec('train')), val: await TensorDatasetWriter.create(ctx.outs.val!, tensorSpec('val')) };
      try {
        const buffer = new Uint8Array(itemBytes);
        const rgbBytes = size[0] * size[1] * channels;
        for (const item of items) {
          if (testGroups.has(item.group)) continue;
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
      await writeContract(transform2dContract, ctx.outs.transform!, transform);
      await writeContract(splitContract, ctx.outs.split!, split);
      ctx.print(
        `${split.trainIds.length} train / ${split.valIds.length} val images (${split.train.length} / ${split.val.length} groups${testGroups.size ? `; ${testGroups.size} test groups held out` : ''}) at ${size[0]}x${size[1]}x${channels}, ` +
          `normalize ${normalize} mean [${transform.normalize.mean.map((m) => m.toFixed(3)).join(', ')}]`,
      );
      return { status: 'done', summary: { train: split.trainIds.length, val: split.valIds.length, trainCars: split.train.length, valCars: split.val.length } };
    } finally {
      fs.closeSync(scratch);
      fs.rmSync(scratchFile, { force: true });
    }
  },
});

// Step 7: train the model from model.build on preprocess's tensor datasets with the hparams stage's set.
// Checkpoints go to ctx.checkpointDir (lib/train/checkpoint.ts); on ctx.signal abort the current step
// finishes, a checkpoint is written and the stage returns `interrupted`; the next run with the same cache key
// continues from it and ends with exactly the weights of an uninterrupted run (lib/train/loop.ts says why).
import path from 'node:path';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import { backendFacts, initBackend } from '../../lib/tf/backend.js';
import { checkPlatform } from '../../lib/tf/platform.js';
import { loadModelFromDir, saveModelToDir } from '../../lib/tf/model-io.js';
import { readTensorSpec, type TensorDatasetSpec } from '../../lib/tensors/dataset.js';
import { TensorDatasetReader } from '../../lib/tensors/random-access.js';
import { streamedValidation } from '../../lib/train/validation.js';
import { augmentBatch, validateAugmentConfig } from '../../lib/preprocess/augment.js';
import { readHparams } from '../../lib/train/hparams.js';
import { checkLossFitsClasses } from '../../lib/train/losses.js';
import { trainLoop } from '../../lib/train/loop.js';
import { writeAllWeights } from '../../lib/train/gradients.js';
import { createProgress } from '../../lib/train/progress.js';
import { formatMetricsJsonl } from '../../lib/train/metrics-file.js';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { createParallelEngine, resolveWorkers } from '../../lib/train/parallel.js';
import { validationPanels, writeTrainEvents } from './tensorboard.js';

interface TrainParams {
  progress_seconds: number;
  tensorboard_panels: number;
}

function describeShape(spec: TensorDatasetSpec): string {
  return `x [${spec.x.shape}] y [${spec.y.shape}] classes ${spec.classes}`;
}

export default defineStage<TrainParams>({
  kind: 'train',
  version: '1',
  description: 'Train the segmentation model with checkpoints and exact resume; record metrics per step and epoch.',
  inputs: {
    train: { description: 'training tensor dataset (preprocess train output)' },
    val: { description: 'validation tensor dataset (preprocess val output)' },
    model: { description: 'initial model: LayersModel folder from model.build' },
    hparams: { description: 'hparams.json from the hparams stage' },
  },
  outputs: {
    model: { description: 'the best weights on best_metric (else the last), as a LayersModel folder', type: 'dir' },
    metrics: { description: 'metrics.jsonl: one line per step and per epoch', type: 'file' },
    summary: { description: 'summary.json: epochs run, best epoch and value, early stop, interruptions, speed', type: 'file' },
    events: { description: 'a TensorBoard event file: step and epoch scalars, HParams data, validation panels (tensorboard --logdir runs/)', type: 'dir' },
  },
  platform: './platform.js',
  async run(ctx) {
    const hparams = readHparams(ctx.inputs.hparams!);
    validateAugmentConfig(hparams.augment);
    const backend = await initBackend(hparams.backend);
    checkPlatform(ctx.platform, backend);
    // Neither set has to fit in memory: training reads each shuffled batch from disk at random through an offset
    // index (read ahead of the compute; opened below); validation is read in order and streams from disk each epoch.
    const [trainSpec, valSpec] = await Promise.all([readTensorSpec(ctx.inputs.train!), readTensorSpec(ctx.inputs.val!)]);
    const val = await streamedValidation(ctx.inputs.val!);
    const trainDir = ctx.inputs.train!;
    const spec = trainSpec;
    // Items are 2D [H, W, C] with labels [H, W, 1], or 3D patches [D, H, W, C] with labels [D, H, W, 1].
    const rank = spec.x.shape.length;
    const labelsFit = spec.y.shape.length === rank && spec.y.shape[rank - 1] === 1 && spec.y.shape.slice(0, -1).join(',') === spec.x.shape.slice(0, -1).join(',');
    if ((rank !== 3 && rank !== 4) || !labelsFit) {
      throw new Error(`${path.join(trainDir, 'spec.json')}: train expects x [H, W, C] with y [H, W, 1], or x [D, H, W, C] with y [D, H, W, 1]; found ${describeShape(spec)}`);
    }
    if (describeShape(valSpec) !== describeShape(spec) && valSpec.count > 0) {
      throw new Error(
        `${path.join(ctx.inputs.val!, 'spec.json')}: validation set has ${describeShape(valSpec)} but the training set has ${describeShape(spec)}`,
      );
    }
    const shape = [...spec.x.shape];
    const spatial = shape.slice(0, -1);
    if (hparams.input_size && hparams.input_size.join(',') !== spatial.join(',')) {
      throw new Error(
        `hparams input_size [${hparams.input_size}] differs from the training tensors' [${spatial}] ` +
          `(${trainDir}): make preprocess and hparams use the same size, or set input_size: null`,
      );
    }
    checkLossFitsClasses(hparams.loss, spec.classes);
    const model = await loadModelFromDir(ctx.inputs.model!);
    const inputShape = (model.inputs[0]!.shape as (number | null)[]).slice(1);
    const outputShape = (model.outputs[0]!.shape as (number | null)[]).slice(1);
    if (inputShape.join(',') !== shape.join(',')) {
      throw new Error(`${ctx.inputs.model}: the model takes inputs [${inputShape}] but the training tensors are [${shape}]: rebuild the model with that input size and channel count`);
    }
    if (outputShape[outputShape.length - 1] !== spec.classes) {
      throw new Error(`${ctx.inputs.model}: the model outputs ${outputShape[outputShape.length - 1]} channels but the dataset has classes ${spec.classes}`);
    }

    const workers = resolveWorkers(hparams.workers, backend.name);
    ctx.recordEnv({ ...backendFacts(backend), trainWorkers: workers });
    ctx.print(
      `${spec.count} training / ${valSpec.count} validation samples [${shape}], classes ${spec.classes}; ` +
        `backend ${backend.name}, ${workers} worker${workers > 1 ? 's' : ''}`,
    );
    // Pixels labelled with the dataset's ignore index (preprocess records it) count in no loss and no Dice.
    const ignoreIndex = typeof spec.meta.ignore_index === 'number' ? spec.meta.ignore_index : undefined;
    const geometry = { shape, classes: spec.classes, loss: hparams.loss, ...(ignoreIndex !== undefined ? { ignoreIndex } : {}) };
    const engine = workers > 1 ? await createParallelEngine(model, ctx.inputs.model!, geometry, workers, backend.name) : undefined;
    let result;
    let train: TensorDatasetReader | null = null;
    try {
      train = await TensorDatasetReader.open(trainDir);
      result = await trainLoop({
        model,
        train,
        val,
        shape,
        classes: spec.classes,
        hparams,
        checkpointDir: ctx.checkpointDir,
        signal: ctx.signal,
        print: (line) => ctx.print(line),
        progress: createProgress(ctx.interactive, (line) => ctx.print(line), ctx.params.progress_seconds * 1000),
        augment: augmentBatch,
        workers,
        ...(engine ? { engine } : {}),
        ...(ignoreIndex !== undefined ? { ignoreIndex } : {}),
      });
    } finally {
      await engine?.dispose();
      await train?.close();
    }
    const summary: JsonObject = { ...result.summary, backend: backend.name } as unknown as JsonObject;
    if (result.status === 'interrupted') {
      model.dispose();
      return { status: 'interrupted', summary };
    }
    writeAllWeights(model, result.bestWeights!);
    await saveModelToDir(model, ctx.outs.model!);
    const panels = await validationPanels(model, val, shape, spec.classes, ctx.params.tensorboard_panels);
    model.dispose();
    await writeFileAtomic(ctx.outs.metrics!, formatMetricsJsonl(result.metrics));
    await writeJsonAtomic(ctx.outs.summary!, summary);
    await writeTrainEvents(ctx.outs.events!, { metrics: result.metrics, summary: result.summary, hparams, panels, endSecs: Date.now() / 1000 });
    const s = result.summary;
    ctx.print(
      `done: ${s.epochs_run} epochs, best ${s.best_metric} ${s.best_value?.toFixed(4) ?? 'n/a'} at epoch ${s.best_epoch ?? 'n/a'}` +
        `${s.stopped_early ? ' (stopped early)' : ''}, ${s.images_per_s.toFixed(1)} images/s ` +
        `(input pipeline ${(100 * s.input_share).toFixed(1)}% of the step time)`,
    );
    return { status: 'done', summary };
  },
});

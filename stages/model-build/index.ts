// Step 6: build the U-Net from params, optionally load pretrained weights by layer name and shape, optionally
// freeze the encoder, and save the initial model as a LayersModel folder for train.
import path from 'node:path';
import { defineStage } from '../../engine/stage.js';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic.js';
import { backendFacts, initBackend, type BackendPreference } from '../../lib/tf/backend.js';
import { checkPlatform } from '../../lib/tf/platform.js';
import { buildUNet, freezeEncoder, validateUNetInput, type UNetArch } from '../../lib/tf/unet.js';
import { saveModelToDir } from '../../lib/tf/model-io.js';
import { emptyLoadReport, formatLoadReport, loadPretrainedWeights } from '../../lib/tf/pretrained.js';

export interface ModelBuildParams {
  arch: UNetArch;
  /** [H, W] for unet2d, [D, H, W] for unet3d. */
  input_size: number[];
  in_channels: number;
  classes: number;
  filters: number;
  depth: number;
  batch_norm: boolean;
  dropout: number;
  seed: number;
  freeze_encoder: boolean;
  strict: boolean;
  backend: BackendPreference;
}

export default defineStage<ModelBuildParams>({
  kind: 'model.build',
  version: '2',
  description:
    'Build the 2D or 3D U-Net (seeded initial weights), optionally load pretrained weights by layer name and shape, optionally freeze the encoder.',
  inputs: {
    pretrained: {
      description: 'Pretrained weights: a LayersModel folder (model.json + shards), a model.json, a .weights.bin beside its model.json, or a flow checkpoint folder',
      optional: true,
    },
  },
  outputs: {
    model: { description: 'The initial model: TensorFlow.js LayersModel folder (model.json + weights.bin)', type: 'dir' },
    report: { description: 'load-report.json + load-report.txt: layers loaded / skipped (and why) / not in model', type: 'dir' },
  },
  platform: '../../lib/tf/platform.js',
  async run(ctx) {
    const p = ctx.params;
    // JSON Schema cannot relate input_size to depth; this is that cross-field check.
    const problem = validateUNetInput(p.input_size, p.depth, 'input_size');
    if (problem !== null) throw new Error(`stage ${ctx.stageName} (model.build): ${problem}`);
    const spatialDims = p.arch === 'unet3d' ? 3 : 2;
    if (p.input_size.length !== spatialDims) {
      const want = spatialDims === 3 ? '[D, H, W]' : '[H, W]';
      throw new Error(
        `stage ${ctx.stageName} (model.build): arch ${p.arch} takes input_size ${want}, got [${p.input_size.join(', ')}]; ` +
          `use arch ${spatialDims === 3 ? 'unet2d' : 'unet3d'} for ${p.input_size.length === 3 ? '3D patches' : '2D images'} or give ${spatialDims} sizes`,
      );
    }
    const backend = await initBackend(p.backend);
    checkPlatform(ctx.platform, backend);
    ctx.recordEnv(backendFacts(backend));
    ctx.print(`backend ${backend.name} (${backend.package} ${backend.version}, ${backend.threads} thread(s)): ${backend.reason}`);

    const model = buildUNet({
      inputShape: [...p.input_size, p.in_channels],
      classes: p.classes,
      filters: p.filters,
      depth: p.depth,
      batchNorm: p.batch_norm,
      dropout: p.dropout,
      seed: p.seed,
    });
    try {
      const pretrained = ctx.inputs.pretrained;
      const report =
        pretrained === undefined
          ? emptyLoadReport(model, p.strict)
          : loadPretrainedWeights(model, pretrained, { strict: p.strict });
      const summary = formatLoadReport(report);
      for (const line of summary.split('\n')) ctx.print(line);
      for (const skip of report.skipped) ctx.log.warn({ stage: ctx.stageName, layer: skip.layer }, `${skip.reason}: ${skip.detail}`);

      const frozen = p.freeze_encoder ? freezeEncoder(model) : [];
      if (frozen.length > 0) ctx.print(`froze ${frozen.length} encoder layers (enc*): train keeps their weights fixed`);

      await saveModelToDir(model, ctx.outs.model!);
      await writeFileAtomic(path.join(ctx.outs.report!, 'load-report.txt'), `${summary}\n`);
      // JSON last: it is what marks the report complete.
      await writeJsonAtomic(path.join(ctx.outs.report!, 'load-report.json'), { ...report, frozen });

      const parameters = model.countParams();
      const trainable = model.trainableWeights.reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
      ctx.print(`${p.arch} ${p.input_size.join('x')}x${p.in_channels} → ${p.classes}: ${model.layers.length} layers, ${parameters} parameters (${trainable} trainable)`);
      return {
        status: 'done',
        summary: {
          layers: model.layers.length,
          parameters,
          trainableParameters: trainable,
          loadedLayers: report.counts.loaded,
          skippedLayers: report.counts.skipped,
          frozenLayers: frozen.length,
          backend: backend.name,
        },
      };
    } finally {
      model.dispose();
    }
  },
});

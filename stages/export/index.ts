// Step 9: the trained model as a TensorFlow.js LayersModel folder plus flow-model.json, and PNG + SVG plots
// of the training curves.
import { mkdir, readFile } from 'node:fs/promises';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import { backendFacts, initBackend, type BackendPreference } from '../../lib/tf/backend.js';
import { checkPlatform } from '../../lib/tf/platform.js';
import { loadModelFromDir, saveModelToDir } from '../../lib/tf/model-io.js';
import { encodeFloat32, FLOW_MODEL_JSON, runProbe, type FlowModelFile } from '../../lib/contracts/flow-model.js';
import { readCurves, writeCurvePlots } from './plots.js';

export interface ExportParams {
  backend: BackendPreference;
  probe_seed: number;
}

/** Per-item model input shape: the model's own where it is fixed, else the transform's size and channels. */
function itemShape(declared: ReadonlyArray<number | null>, transform: JsonObject, source: string): number[] {
  const dims = declared.slice(1);
  if (dims.every((d): d is number => typeof d === 'number' && d > 0)) return dims;
  const size = transform.size;
  const channels = dims[dims.length - 1];
  if (Array.isArray(size) && size.every((v) => typeof v === 'number') && typeof channels === 'number') {
    return [...(size as number[]), channels];
  }
  throw new Error(`${source}: the model's input shape [${declared.join(', ')}] has free dimensions and transform.json gives no "size" to fill them`);
}

export default defineStage<ExportParams>({
  kind: 'export',
  version: '1',
  description: 'Save the trained model (LayersModel + flow-model.json with a probe) and plot the training curves.',
  inputs: {
    model: { description: "train's best-weights LayersModel folder" },
    curves: { description: "train.log's curves folder (curves.json)" },
    transform: { description: "preprocess's transform.json" },
  },
  outputs: {
    model: { description: 'LayersModel folder (model.json, weights.bin) with flow-model.json', type: 'dir' },
    plots: { description: 'loss, Dice and learning-rate curves per epoch as PNG and SVG', type: 'dir' },
  },
  platform: '../../lib/tf/platform.js',
  async run(ctx) {
    const backend = await initBackend(ctx.params.backend);
    checkPlatform(ctx.platform, backend);
    ctx.recordEnv(backendFacts(backend));
    const transformFile = ctx.inputs.transform!;
    let transform: JsonObject;
    try {
      transform = JSON.parse(await readFile(transformFile, 'utf8')) as JsonObject;
    } catch (error) {
      throw new Error(`${transformFile}: cannot read transform.json (${(error as Error).message})`);
    }
    const curves = await readCurves(ctx.inputs.curves!);

    const model = await loadModelFromDir(ctx.inputs.model!);
    try {
      const input = model.inputs[0]!.shape;
      const shape = itemShape(input, transform, ctx.inputs.model!);
      const probeShape = [1, ...shape];
      const output = runProbe(model, ctx.params.probe_seed, probeShape);
      const outputShape = model.outputs[0]!.shape.slice(1).map((d, axis) => d ?? shape[axis]!);
      const classes = outputShape[outputShape.length - 1]!;
      let sum = 0;
      for (const v of output) sum += v;
      const flowModel: FlowModelFile = {
        format: 'flow-model/v1',
        inputShape: shape,
        outputShape,
        classes,
        activation: classes === 1 ? 'sigmoid' : 'softmax',
        transform,
        probe: {
          seed: ctx.params.probe_seed,
          input: 'lib/rng Rng(seed).normal(), float32, row-major over shape',
          shape: probeShape,
          outputShape: [1, ...outputShape],
          output: encodeFloat32(output),
          outputSum: sum,
          backend: backend.name,
        },
      };
      await saveModelToDir(model, ctx.outs.model!, { extraFiles: { [FLOW_MODEL_JSON]: `${JSON.stringify(flowModel, null, 2)}\n` } });
      await mkdir(ctx.outs.plots!, { recursive: true });
      const plotted = await writeCurvePlots(curves, ctx.outs.plots!);
      ctx.print(`model [${shape.join('x')}] → [${outputShape.join('x')}] saved; plots: ${plotted.join(', ')}`);
      return { status: 'done', summary: { inputShape: shape, classes, plots: plotted } };
    } finally {
      model.dispose();
    }
  },
});

// Step 10: reload the exported model from its files alone and prove it is complete: its structure, and a
// probe (the fixed seeded input export recorded in flow-model.json) whose prediction must match exactly.
import fs from 'node:fs';
import path from 'node:path';
import { defineStage, type JsonObject } from '../../engine/stage.js';
import { writeJsonAtomic } from '../../lib/atomic.js';
import { backendFacts, initBackend, type BackendPreference } from '../../lib/tf/backend.js';
import { checkPlatform } from '../../lib/tf/platform.js';
import { MODEL_JSON, WEIGHTS_BIN, loadModelFromDir, readModelJson } from '../../lib/tf/model-io.js';
import { FLOW_MODEL_JSON, probeDifference, readFlowModel } from '../../lib/contracts/flow-model.js';

export interface ModelLoadParams {
  backend: BackendPreference;
}

/** Tolerance when the probe was recorded on another backend (rounding differs); same backend: exactly 0. */
export const CROSS_BACKEND_TOLERANCE = 1e-4;

export default defineStage<ModelLoadParams>({
  kind: 'model.load',
  version: '1',
  description: 'Reload an exported LayersModel from its files and check it reproduces the recorded probe prediction.',
  inputs: {
    model: { description: "export's model folder (model.json + weight shards + flow-model.json)" },
  },
  outputs: {
    check: { description: 'reload.json: layer and parameter counts, input/output shapes, probe comparison', type: 'dir' },
  },
  platform: '../../lib/tf/platform.js',
  async run(ctx) {
    const dir = ctx.inputs.model!;
    const backend = await initBackend(ctx.params.backend);
    checkPlatform(ctx.platform, backend);
    ctx.recordEnv(backendFacts(backend));
    const model = await loadModelFromDir(dir);
    try {
      const modelJson = readModelJson(path.join(dir, MODEL_JSON));
      const shards = modelJson.weightsManifest.flatMap((group) => group.paths);
      const check: JsonObject = {
        model: dir,
        layers: model.layers.length,
        parameters: model.countParams(),
        inputShapes: model.inputs.map((input) => input.shape) as JsonObject[keyof JsonObject],
        outputShapes: model.outputs.map((output) => output.shape) as JsonObject[keyof JsonObject],
        weightShards: shards,
        backend: backend.name,
      };
      if (fs.existsSync(path.join(dir, FLOW_MODEL_JSON))) {
        const flowModel = await readFlowModel(dir);
        const { maxAbsDiff, values } = probeDifference(model, flowModel);
        const sameBackend = flowModel.probe.backend === backend.name;
        const tolerance = sameBackend ? 0 : CROSS_BACKEND_TOLERANCE;
        check.probe = {
          seed: flowModel.probe.seed,
          shape: flowModel.probe.shape,
          values,
          maxAbsDiff,
          recordedOn: flowModel.probe.backend,
          tolerance,
          exact: sameBackend,
          ok: maxAbsDiff <= tolerance,
        };
        if (!(maxAbsDiff <= tolerance)) {
          const weightsFile = path.join(dir, shards.length === 1 ? shards[0]! : WEIGHTS_BIN);
          throw new Error(
            `${weightsFile}: the reloaded model's probe prediction differs from ${path.join(dir, FLOW_MODEL_JSON)} ` +
              `by up to ${maxAbsDiff} (allowed ${tolerance}${sameBackend ? ', same backend' : ''}): the exported ` +
              `weights or model.json are incomplete or corrupt; re-run export`,
          );
        }
        ctx.print(`probe of ${values} values reproduced: max abs diff ${maxAbsDiff}${sameBackend ? ' (exact)' : ` (recorded on ${flowModel.probe.backend})`}`);
      } else {
        check.probe = null;
        ctx.print(`no ${FLOW_MODEL_JSON} in ${dir}: structure checked, no probe to compare`);
      }
      await writeJsonAtomic(path.join(ctx.outs.check!, 'reload.json'), check);
      ctx.print(`reloaded ${check.layers} layers, ${check.parameters} parameters from ${dir}`);
      return { status: 'done', summary: { layers: check.layers!, parameters: check.parameters! } };
    } finally {
      model.dispose();
    }
  },
});

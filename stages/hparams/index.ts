// Step 5: the hyper-parameter set, resolved (schema defaults applied) and recorded as hparams.json, so a run
// folder says exactly what trained its model and `--set train.lr=...` changes one obvious name.
import { defineStage } from '../../engine/stage.js';
import { resolveHparams, type Hparams } from '../../lib/train/hparams.js';
import { writeJsonAtomic } from '../../lib/atomic.js';

export default defineStage<Hparams>({
  kind: 'hparams',
  version: '1',
  description: 'Resolve and record the training hyper-parameters (hparams.json).',
  inputs: {},
  outputs: {
    hparams: { description: 'hparams.json: the resolved hyper-parameter set train reads', type: 'file' },
  },
  async run(ctx) {
    // The engine validated the params already; resolving again states every default explicitly in the file.
    const resolved = resolveHparams(ctx.params, `stage ${ctx.stageName} params`);
    await writeJsonAtomic(ctx.outs.hparams, resolved);
    ctx.print(
      `${resolved.optimizer} lr ${resolved.lr} (${resolved.schedule.type}), loss ${resolved.loss}, ` +
        `batch ${resolved.batch_size}, epochs ${resolved.epochs}, seed ${resolved.seed}`,
    );
    return { status: 'done', summary: { optimizer: resolved.optimizer, lr: resolved.lr, epochs: resolved.epochs } };
  },
});

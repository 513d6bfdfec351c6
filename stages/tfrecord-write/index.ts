// Step 2: an ingest index.json → sharded TFRecord files of tf.train.Example, byte-compatible with
// TensorFlow's TFRecordDataset, plus spec.json describing every feature (docs/contracts.md).
import { defineStage } from '../../engine/stage.js';
import { convertIndexToShards, type TFRecordWriteParams } from './convert.js';

export default defineStage<TFRecordWriteParams>({
  kind: 'tfrecord.write',
  version: '1',
  description: 'Convert the ingest index to sharded TFRecord files (tf.train.Example) with a feature spec.json.',
  inputs: {
    samples: { description: "The ingest stage's index.json (any dataset kind of lib/datasets)." },
  },
  outputs: {
    shards: { description: 'Folder of part-XXXXX-of-YYYYY.tfrecord[.gz|.zz] shards and spec.json', type: 'dir' },
  },
  async run(ctx) {
    let warnings = 0;
    let lastPrinted = 0;
    const spec = await convertIndexToShards(ctx.inputs.samples!, ctx.outs.shards!, ctx.params, {
      signal: ctx.signal,
      warn: (message) => {
        warnings++;
        ctx.log.warn({ warning: message }, message);
        if (warnings <= 5) ctx.print(`warning: ${message}`);
      },
      progress: (done, total) => {
        const now = Date.now();
        if (done === total || now - lastPrinted > 2000) {
          lastPrinted = now;
          ctx.print(`${done}/${total} samples`);
        }
      },
    });
    // Not resumable: an interrupted conversion is simply redone.
    if (spec === null) return { status: 'interrupted' };
    if (warnings > 5) ctx.print(`${warnings} warnings in all (see the log)`);
    const bytes = spec.shards.reduce((a, s) => a + s.bytes, 0);
    ctx.print(`${spec.records} records in ${spec.shards.length} shard(s), ${(bytes / 1e6).toFixed(1)} MB, compression ${spec.compression}`);
    return { status: 'done', summary: { records: spec.records, shards: spec.shards.length, bytes, warnings } };
  },
});

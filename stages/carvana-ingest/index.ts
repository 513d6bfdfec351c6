// Step 1 for Carvana: pair train/*.jpg with train_masks/*_mask.gif, analyse every file, and write the sample
// index and the analysis report. Broken or unpaired files are listed as skipped (strict: an error).
import { defineStage } from '../../engine/stage.js';
import { ingestProgress, writeIngestOutputs } from '../../lib/datasets/ingest-outputs.js';
import { formatCarvanaReport, ingestCarvana, type CarvanaIngestParams } from '../../lib/datasets/carvana/ingest.js';

export default defineStage<CarvanaIngestParams>({
  kind: 'carvana.ingest',
  version: '1',
  description: 'Read and analyse a raw Carvana folder (train/*.jpg + train_masks/*_mask.gif): sample index and statistics report.',
  inputs: {
    root: { description: 'The raw Carvana folder (holding train/ and train_masks/)' },
  },
  outputs: {
    index: { description: 'index.json: the image/mask pairs, grouped by car, the skipped files with reasons, and each used file\'s size and digest', type: 'file' },
    report: { description: 'report.json + report.txt: counts, sizes, mask values, car fraction, intensities, problems', type: 'dir' },
  },
  async run(ctx) {
    const root = ctx.inputs.root;
    if (root === undefined) throw new Error(`stage ${ctx.stageName}: input "root" (the raw Carvana folder) is missing`);
    const { index, report } = await ingestCarvana(root, ctx.params, { signal: ctx.signal, onProgress: ingestProgress(ctx, 'pairs', 500) });
    await writeIngestOutputs(ctx, { index, report, reportText: formatCarvanaReport(report), skippedNoun: 'file(s)' });
    ctx.print(`${report.counts.pairs} pairs of ${report.counts.cars} cars, ${report.counts.skipped} skipped`);
    return {
      status: 'done',
      summary: { pairs: report.counts.pairs, cars: report.counts.cars, skipped: report.counts.skipped, warnings: report.counts.warnings },
    };
  },
});

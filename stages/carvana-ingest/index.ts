// Step 1 for Carvana: pair train/*.jpg with train_masks/*_mask.gif, analyse every file, and write the sample
// index and the analysis report. Broken or unpaired files are listed as skipped (strict: an error).
import fs from 'node:fs';
import path from 'node:path';
import { defineStage } from '../../engine/stage.js';
import { writeFileAtomic, writeJsonAtomic } from '../../engine/fs-util.js';
import { formatCarvanaReport, ingestCarvana, type CarvanaIngestParams } from './ingest.js';

export default defineStage<CarvanaIngestParams>({
  kind: 'carvana.ingest',
  version: '1',
  description: 'Read and analyse a raw Carvana folder (train/*.jpg + train_masks/*_mask.gif): sample index and statistics report.',
  inputs: {
    root: { description: 'The raw Carvana folder (holding train/ and train_masks/)' },
  },
  outputs: {
    index: { description: 'index.json: the image/mask pairs, grouped by car, and the skipped files with reasons', type: 'file' },
    report: { description: 'report.json + report.txt: counts, sizes, mask values, car fraction, intensities, problems', type: 'dir' },
  },
  async run(ctx) {
    const root = ctx.inputs.root;
    if (root === undefined) throw new Error(`stage ${ctx.stageName}: input "root" (the raw Carvana folder) is missing`);
    let lastPrinted = 0;
    const { index, report } = await ingestCarvana(root, ctx.params, {
      signal: ctx.signal,
      onProgress: (done, total) => {
        if (done === total || done - lastPrinted >= 500) {
          lastPrinted = done;
          ctx.print(`analysed ${done}/${total} pairs`);
        }
      },
    });
    for (const warning of report.warnings) ctx.log.warn({ stage: ctx.stageName }, warning);
    if (report.warnings.length > 0) ctx.print(`${report.warnings.length} warning(s), e.g. ${report.warnings[0]}`);
    for (const skipped of index.skipped) ctx.log.warn({ stage: ctx.stageName, file: skipped.path }, `skipped: ${skipped.reason}`);
    if (index.skipped.length > 0) ctx.print(`skipped ${index.skipped.length} file(s), e.g. ${index.skipped[0]!.path}: ${index.skipped[0]!.reason}`);

    // Report first, index last: index.json is what downstream stages take as "ingest finished".
    fs.mkdirSync(ctx.outs.report!, { recursive: true });
    writeJsonAtomic(path.join(ctx.outs.report!, 'report.json'), report);
    writeFileAtomic(path.join(ctx.outs.report!, 'report.txt'), formatCarvanaReport(report));
    writeJsonAtomic(ctx.outs.index!, index);
    ctx.print(`${report.counts.pairs} pairs of ${report.counts.cars} cars, ${report.counts.skipped} skipped`);
    return {
      status: 'done',
      summary: { pairs: report.counts.pairs, cars: report.counts.cars, skipped: report.counts.skipped, warnings: report.counts.warnings },
    };
  },
});

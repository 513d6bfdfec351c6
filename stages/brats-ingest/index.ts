// Step 1 for BraTS 2019: index the patients of a raw folder and write the analysis report. Broken or
// incomplete patients are listed as skipped with the reason (strict: any problem is an error naming the file).
import fs from 'node:fs';
import path from 'node:path';
import { defineStage } from '../../engine/stage.js';
import { writeFileAtomic, writeJsonAtomic } from '../../engine/fs-util.js';
import { formatBratsReport, ingestBrats, type BratsIngestParams } from './ingest.js';

export default defineStage<BratsIngestParams>({
  kind: 'brats.ingest',
  version: '1',
  description:
    'Read and analyse a raw BraTS 2019 folder (Training/{HGG,LGG}/<patient>/, Validation/<patient>/): patient index and statistics report.',
  inputs: {
    root: { description: 'The raw BraTS folder (holding Training/ and/or Validation/)' },
  },
  outputs: {
    index: { description: 'index.json: the patients with their modality and seg files, and the skipped patients with reasons', type: 'file' },
    report: { description: 'report.json + report.txt: counts, dims, spacings, datatypes, intensities, label frequencies, problems', type: 'dir' },
  },
  async run(ctx) {
    const root = ctx.inputs.root;
    if (root === undefined) throw new Error(`stage ${ctx.stageName}: input "root" (the raw BraTS folder) is missing`);
    let lastPrinted = 0;
    const result = await ingestBrats(root, ctx.params, {
      signal: ctx.signal,
      onProgress: (done, total) => {
        if (done === total || done - lastPrinted >= 25) {
          lastPrinted = done;
          ctx.print(`analysed ${done}/${total} patients`);
        }
      },
    });
    if (result === null) return { status: 'interrupted' };
    const { index, report } = result;
    for (const warning of report.warnings) ctx.log.warn({ stage: ctx.stageName }, warning);
    if (report.warnings.length > 0) ctx.print(`${report.warnings.length} warning(s), e.g. ${report.warnings[0]}`);
    for (const item of index.skipped) ctx.log.warn({ stage: ctx.stageName, file: item.path }, `skipped: ${item.reason}`);
    if (index.skipped.length > 0) ctx.print(`skipped ${index.skipped.length} patient(s), e.g. ${index.skipped[0]!.path}: ${index.skipped[0]!.reason}`);

    // Report first, index last: index.json is what downstream stages take as "ingest finished".
    fs.mkdirSync(ctx.outs.report!, { recursive: true });
    writeJsonAtomic(path.join(ctx.outs.report!, 'report.json'), report);
    writeFileAtomic(path.join(ctx.outs.report!, 'report.txt'), formatBratsReport(report));
    writeJsonAtomic(ctx.outs.index!, index);
    const s = report.counts.bySubset;
    ctx.print(`${report.counts.patients} patients (HGG ${s.HGG}, LGG ${s.LGG}, Validation ${s.Validation}), ${report.counts.skipped} skipped`);
    return {
      status: 'done',
      summary: { patients: report.counts.patients, hgg: s.HGG, lgg: s.LGG, validation: s.Validation, skipped: report.counts.skipped, warnings: report.counts.warnings },
    };
  },
});

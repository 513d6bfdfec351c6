// Step 1 for BraTS 2019: index the patients of a raw folder and write the analysis report. Broken or
// incomplete patients are listed as skipped with the reason (strict: any problem is an error naming the file).
import { defineStage } from '../../engine/stage.js';
import { ingestProgress, writeIngestOutputs } from '../../lib/datasets/ingest-outputs.js';
import { formatBratsReport, ingestBrats, type BratsIngestParams } from '../../lib/datasets/brats/ingest.js';

export default defineStage<BratsIngestParams>({
  kind: 'brats.ingest',
  version: '1',
  description:
    'Read and analyse a raw BraTS 2019 folder (Training/{HGG,LGG}/<patient>/, Validation/<patient>/): patient index and statistics report.',
  inputs: {
    root: { description: 'The raw BraTS folder (holding Training/ and/or Validation/)' },
  },
  outputs: {
    index: { description: 'index.json: the patients with their modality and seg files, the skipped patients with reasons, and each used file\'s size and digest', type: 'file' },
    report: { description: 'report.json + report.txt: counts, dims, spacings, datatypes, intensities, label frequencies, problems', type: 'dir' },
  },
  async run(ctx) {
    const root = ctx.inputs.root;
    if (root === undefined) throw new Error(`stage ${ctx.stageName}: input "root" (the raw BraTS folder) is missing`);
    const result = await ingestBrats(root, ctx.params, { paramPath: `stages.${ctx.stageName}.params`, signal: ctx.signal, onProgress: ingestProgress(ctx, 'patients', 25) });
    if (result === null) return { status: 'interrupted' };
    const { index, report } = result;
    await writeIngestOutputs(ctx, { index, report, reportText: formatBratsReport(report), skippedNoun: 'patient(s)' });
    const s = report.counts.bySubset;
    ctx.print(`${report.counts.patients} patients (HGG ${s.HGG}, LGG ${s.LGG}, Validation ${s.Validation}), ${report.counts.skipped} skipped`);
    return {
      status: 'done',
      summary: { patients: report.counts.patients, hgg: s.HGG, lgg: s.LGG, validation: s.Validation, skipped: report.counts.skipped, warnings: report.counts.warnings },
    };
  },
});

// Step 1 for NIfTI datasets described by a dataset.json (nnU-Net v2 raw, Medical Segmentation Decathlon):
// index the cases, check every volume against dataset.json and the label map it declares, and report shapes,
// spacings, intensities and label frequencies. Problem cases are skipped naming the file (strict: an error).
import { defineStage } from '../../engine/stage.js';
import { ingestProgress, writeIngestOutputs } from '../../lib/datasets/ingest-outputs.js';
import { formatNiftiReport, ingestNifti, type NiftiIngestParams } from '../../lib/datasets/volumes/ingest.js';

export default defineStage<NiftiIngestParams>({
  kind: 'nifti.ingest',
  version: '1',
  description: 'Read and analyse an nnU-Net v2 or Decathlon folder (dataset.json + imagesTr/ labelsTr/ imagesTs/): case index with the label map, and the statistics report.',
  inputs: {
    root: { description: 'The dataset folder holding dataset.json' },
  },
  outputs: {
    index: { description: 'index.json: the cases with their channel files and label, the label map from dataset.json, skipped files with reasons, digests', type: 'file' },
    report: { description: 'report.json + report.txt: shapes, spacings, per-channel intensities, label frequencies, dataset.json disagreements, skipped files', type: 'dir' },
  },
  async run(ctx) {
    const root = ctx.inputs.root;
    if (root === undefined) throw new Error(`stage ${ctx.stageName}: input "root" (the dataset folder) is missing`);
    const result = await ingestNifti(root, ctx.params, { paramPath: `stages.${ctx.stageName}.params`, signal: ctx.signal, onProgress: ingestProgress(ctx, 'cases', 25) });
    if (result === null) return { status: 'interrupted' };
    const { index, report } = result;
    await writeIngestOutputs(ctx, { index, report: { ...report, warnings: report.disagreements }, reportText: formatNiftiReport(report), skippedNoun: 'file(s)' });
    ctx.print(`${report.counts.cases} cases (${report.counts.train} train, ${report.counts.test} test), ${report.counts.skipped} skipped`);
    return { status: 'done', summary: { cases: report.counts.cases, train: report.counts.train, test: report.counts.test, skipped: report.counts.skipped } };
  },
});

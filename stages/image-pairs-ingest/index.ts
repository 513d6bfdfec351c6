// Step 1 for any 2D image/mask dataset declared by patterns (ISIC, Oxford-IIIT Pet, your own): pair pictures
// with masks, check and analyse every file, and write the case index (with the label map) and the report.
import { defineStage } from '../../engine/stage.js';
import { ingestProgress, writeIngestOutputs } from '../../lib/datasets/ingest-outputs.js';
import { formatImagePairsReport, ingestImagePairs, type ImagePairsIngestParams } from '../../lib/datasets/image-pairs/ingest.js';

export default defineStage<ImagePairsIngestParams>({
  kind: 'image-pairs.ingest',
  version: '1',
  description: 'Pair 2D images with masks by a pattern (images "dir/*.jpg", masks "dir/{stem}_mask.png"), check them against the label map, and index and analyse them.',
  inputs: {
    root: { description: 'The raw folder the images and masks patterns are relative to' },
  },
  outputs: {
    index: { description: 'index.json: the pairs with group and subset, the label map, the skipped files with reasons, and each used file\'s size and digest', type: 'file' },
    report: { description: 'report.json + report.txt: counts, sizes, formats, channels, label value frequencies, skipped files', type: 'dir' },
  },
  async run(ctx) {
    const root = ctx.inputs.root;
    if (root === undefined) throw new Error(`stage ${ctx.stageName}: input "root" (the raw folder) is missing`);
    const result = await ingestImagePairs(root, ctx.params, { paramPath: `stages.${ctx.stageName}.params`, signal: ctx.signal, onProgress: ingestProgress(ctx, 'pairs', 500) });
    if (result === null) return { status: 'interrupted' };
    const { index, report } = result;
    await writeIngestOutputs(ctx, { index, report: { ...report, warnings: [] }, reportText: formatImagePairsReport(report), skippedNoun: 'file(s)' });
    ctx.print(`${report.counts.pairs} pairs in ${report.counts.groups} groups (${report.counts.test} official test), ${report.counts.skipped} skipped`);
    return { status: 'done', summary: { pairs: report.counts.pairs, groups: report.counts.groups, test: report.counts.test, skipped: report.counts.skipped } };
  },
});

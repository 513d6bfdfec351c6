// What both ingest stages (carvana.ingest, brats.ingest) do around their analysis: throttled progress lines,
// warnings and skipped files to the log and a one-line summary of each to the console, and the outputs
// written report first, index.json last (index.json is what downstream stages take as "ingest finished").
import path from 'node:path';
import type { StageContext } from '../../engine/stage.js';
import { writeFileAtomic, writeJsonAtomic } from '../atomic.js';

/** A progress callback that prints `analysed <done>/<total> <noun>` every `every` items and at the end. */
export function ingestProgress(ctx: StageContext<unknown>, noun: string, every: number): (done: number, total: number) => void {
  let lastPrinted = 0;
  return (done, total) => {
    if (done === total || done - lastPrinted >= every) {
      lastPrinted = done;
      ctx.print(`analysed ${done}/${total} ${noun}`);
    }
  };
}

export interface IngestOutputs {
  index: { skipped: { path: string; reason: string }[] };
  report: { warnings: string[] };
  /** report.txt's text. */
  reportText: string;
  /** What a skipped entry is, plural: "file(s)", "patient(s)". */
  skippedNoun: string;
}

/** Logs the problems, then writes report.json + report.txt into the `report` output and index.json last. */
export async function writeIngestOutputs(ctx: StageContext<unknown>, outputs: IngestOutputs): Promise<void> {
  const { index, report } = outputs;
  for (const warning of report.warnings) ctx.log.warn({ stage: ctx.stageName }, warning);
  if (report.warnings.length > 0) ctx.print(`${report.warnings.length} warning(s), e.g. ${report.warnings[0]}`);
  for (const item of index.skipped) ctx.log.warn({ stage: ctx.stageName, file: item.path }, `skipped: ${item.reason}`);
  if (index.skipped.length > 0) ctx.print(`skipped ${index.skipped.length} ${outputs.skippedNoun}, e.g. ${index.skipped[0]!.path}: ${index.skipped[0]!.reason}`);
  await writeJsonAtomic(path.join(ctx.outs.report!, 'report.json'), report);
  await writeFileAtomic(path.join(ctx.outs.report!, 'report.txt'), outputs.reportText);
  await writeJsonAtomic(ctx.outs.index!, index);
}

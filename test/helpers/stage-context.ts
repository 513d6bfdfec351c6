// One real StageContext for stage tests: a silent pino logger, fresh temp folders, and what the engine would
// collect (printed lines, recorded env facts), so a test runs a stage exactly the way the executor does.
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { JsonObject, StageContext, StageKind } from '../../engine/stage.js';
import { makeTempDir } from './paths.js';

export interface StageContextOptions {
  /**
   * The folder that holds the outputs, workDir and checkpointDir (default: a fresh temp folder). Two contexts
   * given the same folder share the checkpoint, as two runs of one cache key do (interrupt, then resume).
   */
  outDir?: string;
  /** Output paths to use instead of `<outDir>/<name>` (dir) / `<outDir>/<name>.json` (file). */
  outs?: Record<string, string>;
  /** The abort signal the stage sees (default: one that never fires). */
  signal?: AbortSignal;
}

export interface StageRun<Params> {
  ctx: StageContext<Params>;
  /** Lines the stage printed, in order. */
  printed: string[];
  /** The facts the stage passed to recordEnv, merged. */
  env: JsonObject;
  outDir: string;
}

export function stageContext<Params>(
  stage: StageKind<Params>,
  params: Params,
  inputs: Record<string, string>,
  options: StageContextOptions = {},
): StageRun<Params> {
  const outDir = options.outDir ?? makeTempDir(`flow-${stage.kind}-`);
  const outs: Record<string, string> = { ...options.outs };
  for (const [name, declaration] of Object.entries(stage.outputs)) {
    outs[name] ??= path.join(outDir, declaration.type === 'dir' ? name : `${name}.json`);
  }
  // The executor creates both folders before the stage runs.
  const workDir = path.join(outDir, '.work');
  const checkpointDir = path.join(outDir, '.checkpoint');
  fs.mkdirSync(workDir, { recursive: true });
  fs.mkdirSync(checkpointDir, { recursive: true });
  const printed: string[] = [];
  const env: JsonObject = {};
  const ctx: StageContext<Params> = {
    stageName: `test-${stage.kind}`,
    params,
    inputs,
    outs,
    workDir,
    checkpointDir,
    signal: options.signal ?? new AbortController().signal,
    log: pino({ level: 'silent' }),
    print: (line: string) => printed.push(line),
    interactive: false,
    recordEnv: (facts: JsonObject) => Object.assign(env, facts),
    platform: {},
  };
  return { ctx, printed, env, outDir };
}

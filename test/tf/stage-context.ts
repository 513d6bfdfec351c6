// A real StageContext (silent pino logger, fresh temp folders) to run model stages the way the engine does.
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { JsonObject, StageContext, StageKind } from '../../engine/stage.js';
import { makeTempDir } from '../helpers/paths.js';

export interface StageRun<Params> {
  ctx: StageContext<Params>;
  printed: string[];
  env: JsonObject;
}

export function stageContext<Params>(stage: StageKind<Params>, params: Params, inputs: Record<string, string>): StageRun<Params> {
  const outDir = makeTempDir('flow-tf-outs-');
  const outs: Record<string, string> = {};
  for (const [name, declaration] of Object.entries(stage.outputs)) {
    outs[name] = path.join(outDir, declaration.type === 'dir' ? name : `${name}.json`);
  }
  const printed: string[] = [];
  const env: JsonObject = {};
  const workDir = path.join(outDir, '.work');
  fs.mkdirSync(workDir, { recursive: true });
  const ctx: StageContext<Params> = {
    stageName: `test-${stage.kind}`,
    params,
    inputs,
    outs,
    workDir,
    checkpointDir: path.join(outDir, '.checkpoint'),
    signal: new AbortController().signal,
    log: pino({ level: 'silent' }),
    print: (line: string) => printed.push(line),
    interactive: false,
    recordEnv: (facts: JsonObject) => Object.assign(env, facts),
  };
  return { ctx, printed, env };
}

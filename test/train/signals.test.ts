// What a batch scheduler sends reaches training like Ctrl+C: SIGUSR1 (Slurm's `--signal=B:USR1@grace` ahead of
// a time limit or preemption) and SIGTERM (`scancel`, the limit itself) make the running train stage finish its
// step, checkpoint and end `interrupted` (exit 130), and `flow resume` continues from that checkpoint (the e2e
// Ctrl+C test follows a resume to the end of the run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  carvanaPipeline,
  makeFlowHome,
  readRunState,
  runDirs,
  setArgs,
  spawnFlow,
  trainingCheckpoints,
  waitFor,
  type FlowHome,
} from '../e2e/helpers.js';

const OVERRIDES = ['train.epochs=4', 'train.input_size=[32,32]', 'train.filters=4', 'train.checkpoint_every_steps=2'];

/** The highest step of a complete checkpoint (ckpt-N), or -1. */
function lastCheckpoint(home: FlowHome): number {
  return Math.max(-1, ...trainingCheckpoints(home).map((dir) => Number(path.basename(dir).slice('ckpt-'.length))));
}

async function stopTrainingWith(home: FlowHome, signal: NodeJS.Signals, args: string[], runDir: () => string | undefined): Promise<string> {
  const before = lastCheckpoint(home);
  const run = spawnFlow(home, args);
  await waitFor(
    () => {
      const dir = runDir();
      return dir !== undefined && readRunState(dir).stages.train?.status === 'running' && lastCheckpoint(home) > before;
    },
    120_000,
    `the train stage to write a checkpoint before ${signal}`,
  );
  run.child.kill(signal);
  const stopped = await run.done;
  assert.equal(stopped.code, 130, `${signal}: ${stopped.stderr}`);
  assert.match(stopped.stderr, /stopping: finishing the current step, then checkpointing/);
  assert.match(stopped.stderr, /■ train {2}interrupted after .* \(checkpoint kept\)/);
  const state = readRunState(runDir()!);
  assert.equal(state.status, 'interrupted', signal);
  assert.equal(state.stages.train!.status, 'interrupted', signal);
  assert.ok(lastCheckpoint(home) > before, `${signal}: a checkpoint at the step boundary`);
  return stopped.stderr;
}

test('SIGUSR1 and SIGTERM stop training at a checkpoint like Ctrl+C, and resume continues from it', async () => {
  const home = makeFlowHome('flow-signals-');
  const firstRun = (): string | undefined => runDirs(home, 'carvana')[0];
  await stopTrainingWith(home, 'SIGUSR1', ['run', carvanaPipeline, ...setArgs(OVERRIDES)], firstRun);
  const resumed = await stopTrainingWith(home, 'SIGTERM', ['resume'], firstRun);
  assert.match(resumed, /\[train\] resuming from checkpoint .*: epoch \d\/4/);
  const state = readRunState(firstRun()!);
  assert.equal(state.stages.train!.resumedFromCheckpoint, true, 'the second attempt resumed from the first one\'s checkpoint');
  assert.equal(runDirs(home, 'carvana').length, 1, 'both attempts in one run folder');
});

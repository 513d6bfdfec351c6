// A worker for the pool tests: squares numbers after a delay, reporting its place; some tasks fail on purpose.
import { serveTasks } from '../../lib/pool/serve.js';

export interface TestTask {
  id: string;
  n: number;
  delayMs: number;
  fail?: 'throw' | 'exit' | 'uncaught';
}

serveTasks<TestTask, { id: string; square: number; offset: number }>(async (task, context) => {
  const offset = (context.shared as { offset: number }).offset;
  context.at('decoding', 1);
  await new Promise((resolve) => setTimeout(resolve, task.delayMs));
  context.at(`pixel row ${task.n}`, 1);
  if (task.fail === 'throw') throw new RangeError(`sample ${task.id}: bad value ${task.n}`);
  if (task.fail === 'exit') process.exit(7);
  if (task.fail === 'uncaught') setTimeout(() => { throw new Error('native decoder blew up'); }, 0);
  if (task.fail === 'uncaught') await new Promise((resolve) => setTimeout(resolve, 1000));
  return { id: task.id, square: task.n * task.n, offset };
});

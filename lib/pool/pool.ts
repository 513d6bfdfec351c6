// A pool of worker threads that maps tasks to results in task order. Why ordered: a stage's output must be the
// same bytes whatever the pool size, so results are handed out strictly in the order of the tasks, exactly as one
// worker would produce them. Memory is bounded: at most `maxInFlight` tasks are dispatched and not yet consumed
// (the reorder buffer included), and tasks are pulled from the source only as slots free up.
//
// Failures: the first failing task in task order fails the run, as it would on one worker. A task that throws
// fails with its own error; a thread that dies (uncaught exception, exit, out of memory) fails with the task and
// the last place the task reported (`at`). Either way no further task is dispatched, the threads working on later
// tasks are stopped at once, and when the consumer stops early every thread is terminated.
import type { Worker } from 'node:worker_threads';
import type { ItemProgress } from '../train/progress.js';
import type { TaskMessage, WorkerToPool } from './messages.js';
import { startWorker } from './start-worker.js';

export interface PoolOptions<T> {
  /** The worker module; it calls serveTasks() from lib/pool/serve.ts. */
  module: URL;
  /** Threads (at least 1). */
  size: number;
  /** Shared by every task (TaskContext.shared in the worker). */
  shared?: unknown;
  /** Tasks dispatched but not yet consumed, at most (default 2 x size). */
  maxInFlight?: number;
  /** Names a task in errors, e.g. `sample 0cdf5b5d0ce1_01`. */
  describe: (task: T, index: number) => string;
  /** Advanced by the units the workers report. */
  progress?: ItemProgress;
}

/** A thread died while running a task. */
export class WorkerCrashError extends Error {
  override name = 'WorkerCrashError';
}

type Outcome<R> = { ok: true; value: R } | { ok: false; error: Error };

interface Thread<T> {
  worker: Worker;
  task: { index: number; value: T } | null;
  at: string | null;
  stopping: boolean;
}

/** Rebuilds a worker's error on this side, keeping its name, message and stack. */
function remoteError(reply: { name: string; message: string; stack: string | undefined }): Error {
  const error = new Error(reply.message);
  error.name = reply.name;
  if (reply.stack) error.stack = reply.stack;
  return error;
}

export async function* mapOrdered<T, R>(tasks: Iterable<T> | AsyncIterable<T>, options: PoolOptions<T>): AsyncGenerator<R> {
  const size = Math.max(1, Math.floor(options.size));
  const maxInFlight = Math.max(size, options.maxInFlight ?? 2 * size);
  const source: AsyncIterator<T> | Iterator<T> = Symbol.asyncIterator in tasks ? tasks[Symbol.asyncIterator]() : tasks[Symbol.iterator]();
  const outcomes = new Map<number, Outcome<R>>();
  let dispatched = 0;
  let cursor = 0;
  let exhausted = false;
  /** The lowest task index that failed; nothing at or after it is dispatched. */
  let firstFailure = Infinity;
  let wake: () => void = () => undefined;
  let woken = new Promise<void>((resolve) => (wake = resolve));
  const notify = () => wake();

  const fail = (index: number, error: Error) => {
    if (!outcomes.has(index)) outcomes.set(index, { ok: false, error });
    if (index < firstFailure) firstFailure = index;
    // Tasks after the failure cannot change the outcome: stop their threads now.
    for (const thread of threads) if (thread.task !== null && thread.task.index > firstFailure) stop(thread);
    notify();
  };

  const stop = (thread: Thread<T>) => {
    if (thread.stopping) return;
    thread.stopping = true;
    void thread.worker.terminate();
  };

  const threads: Thread<T>[] = Array.from({ length: size }, () => {
    const thread: Thread<T> = { worker: startWorker(options.module, options.shared), task: null, at: null, stopping: false };
    const died = (why: string) => {
      if (thread.stopping) return;
      thread.stopping = true;
      const task = thread.task;
      if (task === null) {
        // Died between tasks: nothing of the output is lost, but the pool is a thread short; fail the next task.
        fail(dispatched, new WorkerCrashError(`a worker thread died while idle: ${why}`));
        return;
      }
      const where = `${options.describe(task.value, task.index)}${thread.at ? `, at ${thread.at}` : ''}`;
      fail(task.index, new WorkerCrashError(`a worker thread crashed on ${where}: ${why}`));
    };
    thread.worker.on('message', (reply: WorkerToPool<R>) => {
      const task = thread.task;
      if (task === null || reply.id !== task.index) return;
      if (reply.type === 'at') {
        thread.at = reply.label;
        if (reply.units > 0) options.progress?.advance(reply.units);
        return;
      }
      thread.task = null;
      thread.at = null;
      if (reply.type === 'result') outcomes.set(task.index, { ok: true, value: reply.result });
      else fail(task.index, remoteError(reply));
      notify();
    });
    thread.worker.on('error', (error) => died(`${error.name}: ${error.message}`));
    thread.worker.on('exit', (code) => died(`the thread exited with code ${code}`));
    return thread;
  });

  try {
    while (true) {
      // Hand tasks to idle threads while the in-flight window allows.
      for (const thread of threads) {
        while (thread.task === null && !thread.stopping && !exhausted && dispatched < firstFailure && dispatched - cursor < maxInFlight) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          const index = dispatched++;
          thread.task = { index, value: next.value };
          const message: TaskMessage<T> = { type: 'task', id: index, task: next.value };
          thread.worker.postMessage(message);
        }
      }
      const outcome = outcomes.get(cursor);
      if (outcome !== undefined) {
        outcomes.delete(cursor);
        if (!outcome.ok) throw outcome.error;
        cursor++;
        yield outcome.value;
        continue;
      }
      if (exhausted && cursor === dispatched) return;
      if (threads.every((t) => t.stopping) && !outcomes.has(cursor)) {
        throw new WorkerCrashError('every worker thread has stopped with tasks left');
      }
      await woken;
      woken = new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    for (const thread of threads) stop(thread);
    await Promise.all(threads.map((t) => t.worker.terminate().catch(() => undefined)));
    const sourceReturn = (source as AsyncIterator<T>).return;
    if (!exhausted && sourceReturn) await sourceReturn.call(source);
  }
}

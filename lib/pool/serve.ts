// The worker-thread side of lib/pool/pool.ts: a module started by the pool calls serveTasks(handler) once; each
// task the pool sends is run by the handler, one at a time, and its result or error sent back.
import { parentPort, workerData } from 'node:worker_threads';
import type { TaskMessage, WorkerToPool } from './messages.js';

export interface TaskContext {
  /** The pool's workerData (what every task of this pool shares: a folder, a spec). */
  readonly shared: unknown;
  /** Marks where the task is (e.g. `record 17`), named if the thread dies, and adds `units` to the progress. */
  at(label: string, units?: number): void;
}

export function serveTasks<T, R>(handler: (task: T, context: TaskContext) => Promise<R> | R): void {
  const port = parentPort;
  if (port === null) throw new Error('serveTasks must run in a worker thread started by lib/pool/pool.ts');
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (message: TaskMessage<T>) => {
    const post = (reply: WorkerToPool<R>) => port.postMessage(reply);
    const context: TaskContext = { shared: workerData, at: (label, units = 0) => post({ type: 'at', id: message.id, label, units }) };
    queue = queue.then(async () => {
      try {
        post({ type: 'result', id: message.id, result: await handler(message.task, context) });
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        post({ type: 'failed', id: message.id, name: error.name, message: error.message, stack: error.stack });
      }
    });
  });
}

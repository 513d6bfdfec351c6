// What the pool (lib/pool/pool.ts) and its worker threads (lib/pool/serve.ts) say to each other.

export interface TaskMessage<T> {
  type: 'task';
  id: number;
  task: T;
}

export type WorkerToPool<R> =
  /** Where the task is now (named in the error if the thread dies), and `units` of progress done. */
  | { type: 'at'; id: number; label: string; units: number }
  | { type: 'result'; id: number; result: R }
  | { type: 'failed'; id: number; name: string; message: string; stack: string | undefined };

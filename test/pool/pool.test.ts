// The worker pool: results in task order and identical for any pool size, in-flight tasks bounded, progress
// counted, and a failing or crashing worker fails the run naming the sample while the other threads are stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapOrdered, WorkerCrashError } from '../../lib/pool/pool.js';
import { siblingModule } from '../../lib/pool/start-worker.js';
import type { TestTask } from './task-worker.js';

const module = siblingModule(import.meta.url, 'task-worker');

function tasks(count: number, fail?: { at: number; kind: TestTask['fail'] }): TestTask[] {
  // Uneven delays so that later tasks often finish first.
  return Array.from({ length: count }, (_, n) => ({ id: `s${n}`, n, delayMs: (n * 7) % 5, ...(fail && fail.at === n ? { fail: fail.kind } : {}) }));
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

test('results come in task order and are identical for 1, 2 and 3 threads; in-flight tasks stay bounded', async () => {
  const expected = tasks(23).map((t) => ({ id: t.id, square: t.n * t.n, offset: 5 }));
  for (const size of [1, 2, 3]) {
    let pulled = 0;
    let consumed = 0;
    let maxAhead = 0;
    let units = 0;
    const source = (function* () {
      for (const task of tasks(23)) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - consumed);
        yield task;
      }
    })();
    const results = [];
    for await (const result of mapOrdered(source, { module, size, shared: { offset: 5 }, maxInFlight: 2 * size, describe: (t: TestTask) => `sample ${t.id}`, progress: { advance: (n) => (units += n), stop: () => undefined } })) {
      results.push(result);
      consumed++;
    }
    assert.deepEqual(results, expected, `size ${size}`);
    assert.ok(maxAhead <= 2 * size, `size ${size}: at most ${2 * size} tasks ahead of the consumer, saw ${maxAhead}`);
    assert.equal(units, 46);
  }
});

test('a task that throws fails the run with its own error, the same for any pool size', async () => {
  for (const size of [1, 3]) {
    await assert.rejects(collect(mapOrdered(tasks(12, { at: 4, kind: 'throw' }), { module, size, shared: { offset: 0 }, describe: (t: TestTask) => `sample ${t.id}` })), (err: Error) => {
      assert.equal(err.name, 'RangeError');
      assert.equal(err.message, 'sample s4: bad value 4');
      return true;
    });
  }
});

test('a crashing thread fails the run naming the sample and where it was; the other threads are stopped', async () => {
  for (const kind of ['exit', 'uncaught'] as const) {
    const list = tasks(8, { at: 2, kind });
    // Tasks after the crash would take a minute: the run must not wait for them.
    for (const t of list) if (t.n > 2) t.delayMs = 60_000;
    const started = Date.now();
    await assert.rejects(collect(mapOrdered(list, { module, size: 2, shared: { offset: 0 }, describe: (t: TestTask) => `sample ${t.id}` })), (err: Error) => {
      assert.ok(err instanceof WorkerCrashError, String(err));
      assert.match(err.message, kind === 'exit' ? /crashed on sample s2, at pixel row 2: the thread exited with code 7/ : /crashed on sample s2, at pixel row 2: Error: native decoder blew up/);
      return true;
    });
    assert.ok(Date.now() - started < 30_000, 'the threads on later tasks were stopped, not awaited');
  }
});

// The stage graph: a stable topological order (file order where the edges leave a choice), cycles with
// their path, and the transitive dependents that `flow watch` re-runs.

/** stage → upstream stages it depends on (each edge once). */
export type Upstreams = ReadonlyMap<string, readonly string[]>;

/** Kahn's algorithm, always taking the ready stage that comes first in the file. Stages on cycles are left out. */
export function topologicalOrder(stages: readonly string[], upstreams: Upstreams): string[] {
  const position = new Map(stages.map((s, i) => [s, i]));
  const remaining = new Map<string, number>();
  const downstream = new Map<string, string[]>(stages.map((s) => [s, []]));
  for (const stage of stages) {
    const ups = (upstreams.get(stage) ?? []).filter((u) => position.has(u));
    remaining.set(stage, ups.length);
    for (const up of ups) downstream.get(up)!.push(stage);
  }
  const ready = stages.filter((s) => remaining.get(s) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => position.get(a)! - position.get(b)!);
    const next = ready.shift()!;
    order.push(next);
    for (const down of downstream.get(next)!) {
      const left = remaining.get(down)! - 1;
      remaining.set(down, left);
      if (left === 0) ready.push(down);
    }
  }
  return order;
}

/**
 * One cycle per strongly connected component that has one (Tarjan), each as a closed path in dependency
 * direction, starting at the component's first stage in file order: [a, b, c, a] means a uses b, b uses c, c uses a.
 */
export function findCycles(stages: readonly string[], upstreams: Upstreams): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  const known = new Set(stages);
  const edges = (s: string) => (upstreams.get(s) ?? []).filter((u) => known.has(u));

  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const cyclic = component.length > 1 || edges(v).includes(v);
      if (cyclic) components.push(component);
    }
  };
  for (const stage of stages) if (!index.has(stage)) connect(stage);

  const position = new Map(stages.map((s, i) => [s, i]));
  return components
    .map((component) => {
      const members = new Set(component);
      const start = [...component].sort((a, b) => position.get(a)! - position.get(b)!)[0]!;
      return shortestCycle(start, members, edges);
    })
    .sort((a, b) => position.get(a[0]!)! - position.get(b[0]!)!);
}

/** Breadth-first from `start` within its component back to `start`: the shortest cycle through it. */
function shortestCycle(start: string, members: Set<string>, edges: (s: string) => string[]): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of edges(v)) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = previous.get(at)!) path.splice(1, 0, at);
        path.push(start);
        return path;
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** `stages` and every stage downstream of them, in `order`. */
export function transitiveDependents(order: readonly string[], upstreams: Upstreams, stages: readonly string[]): string[] {
  const dirty = new Set(stages);
  for (const stage of order) {
    if ((upstreams.get(stage) ?? []).some((u) => dirty.has(u))) dirty.add(stage);
  }
  return order.filter((s) => dirty.has(s));
}

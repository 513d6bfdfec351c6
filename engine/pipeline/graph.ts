// The stage graph as text (for the terminal), Mermaid (for Markdown) or Graphviz DOT.
import { transitiveDependents } from './dag.js';
import type { InputRef, ResolvedPipeline, ResolvedStage } from './types.js';

interface Edge {
  from: string;
  to: string;
  /** The outputs that flow along the edge; empty for a pure `needs` ordering edge. */
  outputs: string[];
}

function edgesOf(p: ResolvedPipeline): Edge[] {
  const edges: Edge[] = [];
  for (const name of p.order) {
    const stage = p.stages[name]!;
    for (const upstream of stage.needs) {
      const outputs = new Set<string>();
      for (const ref of stageRefs(stage)) if (ref.stage === upstream) outputs.add(ref.output);
      edges.push({ from: upstream, to: name, outputs: [...outputs] });
    }
  }
  return edges;
}

function stageRefs(stage: ResolvedStage): Extract<InputRef, { type: 'stage' }>[] {
  return Object.values(stage.inputs).filter((r): r is Extract<InputRef, { type: 'stage' }> => r.type === 'stage');
}

function kindLabel(stage: ResolvedStage): string {
  return stage.kind ?? 'command';
}

export function renderGraph(p: ResolvedPipeline, format: 'text' | 'mermaid' | 'dot'): string {
  switch (format) {
    case 'text':
      return renderText(p);
    case 'mermaid':
      return renderMermaid(p);
    case 'dot':
      return renderDot(p);
  }
}

/** One line per stage in run order, with what it consumes: `records  tfrecord.write  ← ingest.index`. */
function renderText(p: ResolvedPipeline): string {
  const width = Math.max(...p.order.map((n) => n.length));
  const kindWidth = Math.max(...p.order.map((n) => kindLabel(p.stages[n]!).length));
  const lines = [`${p.name}: ${p.order.length} stage${p.order.length === 1 ? '' : 's'}`];
  const edges = edgesOf(p);
  for (const name of p.order) {
    const stage = p.stages[name]!;
    const incoming = edges
      .filter((e) => e.to === name)
      .flatMap((e) => (e.outputs.length > 0 ? e.outputs.map((o) => `${e.from}.${o}`) : [`${e.from} (after)`]));
    const head = `  ${name.padEnd(width)}  ${kindLabel(stage).padEnd(kindWidth)}`;
    lines.push(incoming.length > 0 ? `${head}  ← ${incoming.join(', ')}` : head.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** Mermaid ids must be plain words; stage names may hold `-`. */
function mermaidId(name: string): string {
  return `s_${name.replace(/[^A-Za-z0-9_]/g, (c) => `_${c.charCodeAt(0).toString(16)}_`)}`;
}

function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;');
}

function renderMermaid(p: ResolvedPipeline): string {
  const lines = ['flowchart TD'];
  for (const name of p.order) {
    const stage = p.stages[name]!;
    const shape = stage.kind === null ? ['[/', '/]'] : ['[', ']'];
    lines.push(`  ${mermaidId(name)}${shape[0]}"${mermaidText(name)}<br/><small>${mermaidText(kindLabel(stage))}</small>"${shape[1]}`);
  }
  for (const edge of edgesOf(p)) {
    const arrow = edge.outputs.length > 0 ? `-->|${mermaidText(edge.outputs.join(', '))}|` : '-.->';
    lines.push(`  ${mermaidId(edge.from)} ${arrow} ${mermaidId(edge.to)}`);
  }
  return `${lines.join('\n')}\n`;
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function renderDot(p: ResolvedPipeline): string {
  const lines = [`digraph ${dotString(p.name)} {`, '  rankdir=TB;', '  node [shape=box, fontname="Helvetica"];'];
  for (const name of p.order) {
    const stage = p.stages[name]!;
    const style = stage.kind === null ? ', style=dashed' : '';
    lines.push(`  ${dotString(name)} [label=${dotString(`${name}\n${kindLabel(stage)}`)}${style}];`);
  }
  for (const edge of edgesOf(p)) {
    const attributes = edge.outputs.length > 0 ? ` [label=${dotString(edge.outputs.join(', '))}]` : ' [style=dashed]';
    lines.push(`  ${dotString(edge.from)} -> ${dotString(edge.to)}${attributes};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** For `flow watch`: `stages` and every stage downstream of them, in run order. Unknown names are refused. */
export function dependentsOf(p: ResolvedPipeline, stages: string[]): string[] {
  for (const name of stages) {
    if (!Object.hasOwn(p.stages, name)) throw new Error(`dependentsOf: pipeline ${p.name} has no stage ${name}`);
  }
  const upstreams = new Map(Object.values(p.stages).map((s) => [s.name, s.needs]));
  return transitiveDependents(p.order, upstreams, stages);
}

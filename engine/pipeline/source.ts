// Maps a path in the pipeline document (after overrides) back to where the user wrote it: a range in the
// YAML file via the `yaml` package's node ranges and LineCounter, or the --set argument that put it there.
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';

/** A path into the document: map keys as strings, list indices as numbers. */
export type DocPath = readonly (string | number)[];

export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** Where one --set argument put a value: the key and the value columns within the argument. */
export interface OverrideSite {
  arg: string;
  line: number;
  keyColumn: number;
  valueColumn: number;
}

export const OVERRIDE_FILE = '<--set>';

export function pathKey(path: DocPath): string {
  return JSON.stringify(path.map(String));
}

/** `stages.train.params.lr`, `report[0]`. */
export function displayPath(path: DocPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/** A param path for messages and provenance: `train.lr`, `input_size.0` (the form --set takes). */
export function paramPathText(path: DocPath): string {
  return path.map(String).join('.');
}

export class SourceMap {
  readonly overrideSites = new Map<string, OverrideSite>();

  constructor(
    readonly doc: Document,
    readonly lineCounter: LineCounter,
    readonly file: string,
  ) {}

  at(offset: number): SourceLocation {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, column: col };
  }

  /**
   * The location of the node at `path`: its key (for an unknown key) or its value (for a wrong value).
   * A path that runs past what exists is located at the deepest node that does.
   */
  locate(path: DocPath, part: 'key' | 'value'): SourceLocation {
    for (let n = path.length; n >= 1; n--) {
      const site = this.overrideSites.get(pathKey(path.slice(0, n)));
      if (site) {
        const column = part === 'key' && n === path.length ? site.keyColumn : site.valueColumn;
        return { file: OVERRIDE_FILE, line: site.line, column };
      }
    }
    let node: unknown = this.doc.contents;
    let pair: Pair | undefined;
    let best: number | undefined = rangeStart(node);
    for (let i = 0; i < path.length; i++) {
      const step = childOf(this.doc, node, path[i]!);
      if (!step) break;
      pair = step.pair;
      node = step.node;
      const isLast = i === path.length - 1;
      const keyStart = pair ? rangeStart(pair.key) : undefined;
      const valueStart = rangeStart(node);
      if (isLast && part === 'key') best = keyStart ?? valueStart ?? best;
      else best = valueStart ?? keyStart ?? best;
    }
    return best === undefined ? { file: this.file, line: 1, column: 1 } : this.at(best);
  }
}

/** Steps from a collection node to its child `seg`, through aliases. */
export function childOf(doc: Document, node: unknown, seg: string | number): { node: unknown; pair?: Pair } | undefined {
  const target = isAlias(node) ? node.resolve(doc) : node;
  if (isMap(target)) {
    for (const item of target.items) {
      if (!isPair(item)) continue;
      const key = isScalar(item.key) ? item.key.value : item.key;
      if (String(key) === String(seg)) return { node: item.value, pair: item };
    }
    return undefined;
  }
  if (isSeq(target) && typeof seg === 'number' && seg >= 0 && seg < target.items.length) {
    return { node: target.items[seg] };
  }
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

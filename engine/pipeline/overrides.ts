// Hydra-like `--set key.path=value` overrides: parsed here, applied to the YAML document before resolution
// so that everything downstream (validation, interpolation, provenance) treats them like the file.
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { JsonValue } from '../stage.js';
import { PipelineError, q, type Diagnostic } from './diagnostics.js';
import { childOf, OVERRIDE_FILE, pathKey, type DocPath, type SourceMap } from './source.js';
import { didYouMean } from './suggest.js';

export interface ParsedOverride {
  /** Path in the document: `train.lr` → ['params', 'train', 'lr']; `stages.…` stays as written. */
  path: (string | number)[];
  value: JsonValue;
  /** Prefixed `+`: adds a key that does not exist yet. */
  add: boolean;
}

interface ParsedWithColumns extends ParsedOverride {
  /** 1-based column in the argument where each path segment starts (for the document path: without `params`). */
  segmentColumns: number[];
  keyColumn: number;
  valueColumn: number;
}

/** Parses one `--set` argument; throws PipelineError (file `<--set>`, line 1) when it is malformed. */
export function parseOverride(arg: string): ParsedOverride {
  const result = parseOverrideAt(arg, 1);
  if ('diagnostic' in result) throw new PipelineError([result.diagnostic]);
  return { path: result.path, value: result.value, add: result.add };
}

function parseOverrideAt(arg: string, line: number): ParsedWithColumns | { diagnostic: Diagnostic } {
  const fail = (column: number, message: string, hint?: string) => ({
    diagnostic: { file: OVERRIDE_FILE, line, column, message: `--set ${arg}: ${message}`, ...(hint ? { hint } : {}) },
  });
  const add = arg.startsWith('+');
  const keyStart = add ? 1 : 0;
  const equals = arg.indexOf('=');
  if (equals < 0) return fail(1, 'expected `key.path=value`', 'e.g. --set train.lr=1e-4');
  const keyText = arg.slice(keyStart, equals);
  const segments: (string | number)[] = [];
  const segmentColumns: number[] = [];
  let offset = keyStart;
  for (const segment of keyText.split('.')) {
    if (segment === '') return fail(offset + 1, `empty segment in key \`${keyText}\``, 'separate keys with single dots: a.b.c');
    segments.push(/^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : segment);
    segmentColumns.push(offset + 1);
    offset += segment.length + 1;
  }
  const valueText = arg.slice(equals + 1);
  const valueDoc = parseDocument(valueText, { prettyErrors: false });
  if (valueDoc.errors.length > 0) {
    const error = valueDoc.errors[0]!;
    return fail(equals + 2 + error.pos[0], `the value is not valid YAML: ${error.message}`, 'quote it, e.g. key=\'"a: b"\'');
  }
  const value = valueDoc.toJS() as JsonValue;
  const relativeToDocument = segments[0] === 'stages';
  return {
    path: relativeToDocument ? segments : ['params', ...segments],
    value: value === undefined ? null : value,
    add,
    segmentColumns: relativeToDocument ? segmentColumns : [keyStart + 1, ...segmentColumns],
    keyColumn: keyStart + 1,
    valueColumn: equals + 2,
  };
}

/**
 * Keys that exist implicitly under `parent` though the file does not write them: a kind's declared params,
 * which --set may set without `+` (their default applies otherwise).
 */
export type ImplicitKeys = (parent: DocPath) => string[];

/**
 * Applies the overrides in order to `doc`, registering where each value came from in `source`.
 * Returns the diagnostics; an override with a problem is skipped.
 */
export function applyOverrides(doc: Document, args: string[], source: SourceMap, implicitKeys: ImplicitKeys): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  args.forEach((arg, index) => {
    const line = index + 1;
    const parsed = parseOverrideAt(arg, line);
    if ('diagnostic' in parsed) {
      diagnostics.push(parsed.diagnostic);
      return;
    }
    const problem = applyOne(doc, parsed, implicitKeys);
    if (problem) {
      diagnostics.push({
        file: OVERRIDE_FILE,
        line,
        column: parsed.segmentColumns[problem.segment] ?? parsed.keyColumn,
        message: `--set ${arg}: ${problem.message}`,
        ...(problem.hint ? { hint: problem.hint } : {}),
      });
      return;
    }
    source.overrideSites.set(pathKey(parsed.path), { arg, line, keyColumn: parsed.keyColumn, valueColumn: parsed.valueColumn });
  });
  return diagnostics;
}

function applyOne(doc: Document, override: ParsedWithColumns, implicitKeys: ImplicitKeys): { segment: number; message: string; hint?: string } | undefined {
  const { path, add } = override;
  const shown = (n: number) => displayOverridePath(path.slice(0, n));
  if (doc.contents === null) doc.contents = doc.createNode({}) as Node;
  let node: unknown = doc.contents;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const isLast = i === path.length - 1;
    const collection = isMap(node) || isSeq(node) ? node : undefined;
    if (!collection) {
      const what = isScalar(node) && typeof node.value === 'string' && node.value.includes('${params.')
        ? `a reference (${q(node.value)}); override the param it refers to instead`
        : `a ${describeNode(node)}, not a map or list`;
      return { segment: i - 1, message: `${q(shown(i))} is ${what}` };
    }
    if (isSeq(collection) && typeof seg !== 'number') {
      return { segment: i, message: `${q(shown(i))} is a list; index it with a number, not ${q(seg)}` };
    }
    const child = childOf(doc, collection, seg);
    const implicit = !child && isMap(collection) && implicitKeys(path.slice(0, i)).includes(String(seg));
    if (isLast) {
      if (child && add) {
        return { segment: i, message: `${q(shown(i + 1))} already exists`, hint: `drop the \`+\` to change it` };
      }
      if (isSeq(collection)) {
        const index = seg as number;
        const length = collection.items.length;
        if (index > length || (index === length && !add)) {
          const hint = index === length ? `to append, prefix the override with \`+\`: +${displayOverridePath(path)}=...` : undefined;
          return { segment: i, message: `index ${index} is past the end of ${q(shown(i))} (${length} items)`, ...(hint ? { hint } : {}) };
        }
        if (index === collection.items.length) collection.items.push(doc.createNode(override.value) as Node);
        else collection.items[index] = doc.createNode(override.value) as Node;
        return undefined;
      }
      if (!child && !add && !implicit) return missing(doc, collection, path, i);
      if (child?.pair) child.pair.value = doc.createNode(override.value) as Node;
      else collection.add(doc.createPair(String(seg), override.value));
      return undefined;
    }
    if (child) {
      node = child.node;
      continue;
    }
    // An intermediate key that does not exist: `+` creates it, as does a kind's declared param's parent.
    const createsParent = add || implicitKeys(path.slice(0, i + 1)).includes(String(path[i + 1]));
    if (!createsParent || isSeq(collection)) return missing(doc, collection, path, i);
    const created = doc.createNode({}) as Node;
    collection.add(doc.createPair(String(seg), created));
    node = created;
  }
  return undefined;
}

function missing(doc: Document, collection: unknown, path: (string | number)[], i: number): { segment: number; message: string; hint?: string } {
  const keys: string[] = [];
  if (isMap(collection)) {
    for (const item of collection.items) keys.push(String(isScalar(item.key) ? item.key.value : item.key));
  }
  const where = i === 0 ? 'the pipeline' : q(displayOverridePath(path.slice(0, i)));
  const nearest = didYouMean(String(path[i]), keys);
  const addHint = `to add a new key, prefix the override with \`+\`: +${displayOverridePath(path)}=...`;
  let hint = nearest ? `${nearest} ${addHint}` : addHint;
  // `params.train.lr` typed for `train.lr`: the param paths are relative to params.
  if (path[0] === 'params' && path[1] === 'params' && childOf(doc, doc.contents, 'params') && !nearest) {
    hint = `--set paths are relative to params: write ${displayOverridePath(path.slice(1))}=...`;
  }
  return { segment: i, message: `no key ${q(String(path[i]))} in ${where}`, hint };
}

/** An override path as the user writes it: params-relative (`train.lr`) or `stages.…`. */
export function displayOverridePath(path: DocPath): string {
  const rel = path[0] === 'params' ? path.slice(1) : path;
  return rel.length === 0 ? 'params' : rel.map(String).join('.');
}

function describeNode(node: unknown): string {
  if (isScalar(node)) return node.value === null ? 'null' : typeof node.value;
  return 'value';
}


// `--sweep key=SPEC`: the values a sweep tries for one param, as a small typed grammar in the spirit of Hydra's
// sweeper (`lr=1e-4,3e-4` is a choice, ranges are spelled out). SPEC is a comma-separated list (commas inside
// [..], {..} or quotes do not split) of items, each one of:
//   VALUE            any --set value (YAML: 1e-4, bce_dice, [96, 96], true), parsed and checked like --set
//   A..B[:STEP]      integers A, A+STEP, ..., B (inclusive; STEP > 0, default 1)        e.g. 1..4, 0..20:5
//   LO:HI:logN       N values from LO to HI (inclusive), evenly spaced in log10          e.g. 1e-4:1e-2:log3
//   LO:HI:linN       N values from LO to HI (inclusive), evenly spaced                  e.g. 0:1:lin5
// A literal string that looks like a range is quoted: key='"1..4"' in a shell. Each value becomes one `key=value`
// override of its run, so a sweep run's overrides.txt reads like a hand-typed `--set`.
import type { JsonValue } from '../stage.js';
import { PipelineError, type Diagnostic } from '../pipeline/diagnostics.js';
import { parseOverride } from '../pipeline/overrides.js';

export const SWEEP_FILE = '<--sweep>';
/** More runs than this in one sweep is almost surely a typo (`1..100000`). */
export const MAX_SWEEP_RUNS = 10_000;

export interface SweepValue {
  /** The value as it goes into the run's override (`key=<text>`). */
  text: string;
  value: JsonValue;
}

export interface SweepAxis {
  /** The key as typed (params-relative, or `stages.…`), without a `+`. */
  key: string;
  /** The `--sweep` argument as typed. */
  arg: string;
  /** `+key=…`: the swept key is added, not changed. */
  add: boolean;
  values: SweepValue[];
}

const INT_RANGE = /^(-?\d+)\.\.(-?\d+)(?::(\d+))?$/;
const SPACED_RANGE = /^([^:]+):([^:]+):(log|lin)(\d+)$/;

/** Splits at commas outside brackets, braces and quotes; returns each item with its offset in `text`. */
function splitItems(text: string): { item: string; offset: number }[] {
  const items: { item: string; offset: number }[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote !== null) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') depth--;
    else if (ch === ',' && depth === 0) {
      items.push({ item: text.slice(start, i), offset: start });
      start = i + 1;
    }
  }
  items.push({ item: text.slice(start), offset: start });
  return items;
}

/** A number as a value's text: at most 12 significant digits, so 1e-4:1e-2:log3 gives 0.0001, 0.001, 0.01. */
function numberText(v: number): string {
  return String(Number(v.toPrecision(12)));
}

function finite(text: string): number | null {
  const n = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(n) ? n : null;
}

/** The values of one range item, or a problem with it; null when the item is no range (a plain value). */
function expandRange(item: string): { values: number[] } | { problem: string; hint: string } | null {
  const trimmed = item.trim();
  const int = INT_RANGE.exec(trimmed);
  if (int) {
    const [a, b, step] = [Number(int[1]), Number(int[2]), int[3] === undefined ? 1 : Number(int[3])];
    if (step <= 0) return { problem: `range ${trimmed}: the step must be positive`, hint: 'e.g. 0..20:5' };
    if (b < a) return { problem: `range ${trimmed} is empty (it ends before it starts)`, hint: `write ${b}..${a}` };
    if ((b - a) / step + 1 > MAX_SWEEP_RUNS) return { problem: `range ${trimmed} has more than ${MAX_SWEEP_RUNS} values`, hint: 'use a larger step' };
    const values: number[] = [];
    for (let v = a; v <= b; v += step) values.push(v);
    return { values };
  }
  const spaced = SPACED_RANGE.exec(trimmed);
  if (!spaced) return null;
  const lo = finite(spaced[1]!);
  const hi = finite(spaced[2]!);
  const n = Number(spaced[4]);
  const scale = spaced[3]!;
  if (lo === null || hi === null) return { problem: `range ${trimmed}: ${lo === null ? spaced[1] : spaced[2]} is not a number`, hint: `e.g. 1e-4:1e-2:${scale}3` };
  if (n < 2 || n > MAX_SWEEP_RUNS) return { problem: `range ${trimmed}: the count must be 2..${MAX_SWEEP_RUNS}, got ${n}`, hint: `e.g. ${spaced[1]}:${spaced[2]}:${scale}3` };
  if (scale === 'log' && (lo <= 0 || hi <= 0)) return { problem: `range ${trimmed}: log spacing needs positive ends`, hint: `use lin spacing: ${spaced[1]}:${spaced[2]}:lin${n}` };
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = i / (n - 1);
    values.push(scale === 'log' ? 10 ** (Math.log10(lo) + t * (Math.log10(hi) - Math.log10(lo))) : lo + t * (hi - lo));
  }
  return { values: values.map((v) => Number(numberText(v))) };
}

/**
 * Parses one `--sweep` argument (the index-th, 0-based: its diagnostics say line index+1 of `<--sweep>`).
 * Values are parsed exactly like `--set` values; that they fit the pipeline is checked when each run's
 * pipeline is loaded.
 */
export function parseSweepArg(arg: string, index: number): { axis: SweepAxis } | { diagnostics: Diagnostic[] } {
  const line = index + 1;
  const at = (column: number, message: string, hint?: string): Diagnostic => ({ file: SWEEP_FILE, line, column, message: `--sweep ${arg}: ${message}`, ...(hint ? { hint } : {}) });
  const equals = arg.indexOf('=');
  if (equals < 0) return { diagnostics: [at(1, 'expected `key.path=VALUES`', 'e.g. --sweep train.lr=1e-4,3e-4 or --sweep train.lr=1e-4:1e-2:log3')] };
  const keyPart = arg.slice(0, equals);
  const add = keyPart.startsWith('+');
  const key = add ? keyPart.slice(1) : keyPart;
  const valuesText = arg.slice(equals + 1);
  const diagnostics: Diagnostic[] = [];
  const values: SweepValue[] = [];
  for (const { item, offset } of splitItems(valuesText)) {
    const column = equals + 2 + offset;
    if (item.trim() === '') {
      diagnostics.push(at(column, 'an empty value', 'separate values with single commas: a,b,c'));
      continue;
    }
    const range = expandRange(item);
    if (range !== null && 'problem' in range) {
      diagnostics.push(at(column, range.problem, range.hint));
      continue;
    }
    const texts = range === null ? [item.trim()] : range.values.map(numberText);
    for (const text of texts) {
      try {
        // The --set grammar checks the key and parses the value (YAML), so a sweep value means what --set means.
        values.push({ text, value: parseOverride(`${keyPart}=${text}`).value });
      } catch (err) {
        if (!(err instanceof PipelineError)) throw err;
        for (const d of err.diagnostics) {
          // Columns of `key=text` map back into the --sweep argument: the key as is, the value at its item.
          const inValue = d.column > keyPart.length + 1;
          diagnostics.push({ ...d, file: SWEEP_FILE, line, column: inValue ? column + (d.column - keyPart.length - 2) : d.column, message: d.message.replace(/^--set [^:]*:/, `--sweep ${arg}:`) });
        }
      }
    }
  }
  if (diagnostics.length > 0) return { diagnostics };
  const seen = new Set<string>();
  const dup = values.find((v) => (seen.has(v.text) ? true : (seen.add(v.text), false)));
  if (dup) return { diagnostics: [at(equals + 2, `the value ${dup.text} is listed twice`, 'each value is one run; list it once')] };
  return { axis: { key, arg, add, values } };
}

export interface SweepCombination {
  /** 0-based position in the grid (the first axis varies slowest). */
  index: number;
  /** `key=value` per axis, in axis order: appended to the sweep's --set overrides. */
  overrides: string[];
  /** Swept key → value. */
  params: Record<string, JsonValue>;
}

/**
 * Parses every `--sweep` argument and checks them together (a key swept twice, or swept and also --set),
 * reporting every problem at once; returns the grid's combinations, first axis outermost.
 */
export function parseSweeps(args: readonly string[], sets: readonly string[] = []): { axes: SweepAxis[]; combinations: SweepCombination[] } {
  const diagnostics: Diagnostic[] = [];
  const axes: SweepAxis[] = [];
  args.forEach((arg, i) => {
    const parsed = parseSweepArg(arg, i);
    if ('diagnostics' in parsed) diagnostics.push(...parsed.diagnostics);
    else axes.push(parsed.axis);
  });
  const setKeys = new Set(sets.map((s) => s.slice(0, Math.max(0, s.indexOf('='))).replace(/^\+/, '')));
  const byKey = new Map<string, number>();
  args.forEach((arg, i) => {
    const key = arg.slice(0, Math.max(0, arg.indexOf('='))).replace(/^\+/, '');
    if (key === '') return;
    if (byKey.has(key)) diagnostics.push({ file: SWEEP_FILE, line: i + 1, column: 1, message: `--sweep ${arg}: ${key} is already swept by --sweep number ${byKey.get(key)! + 1}`, hint: 'list all its values in one --sweep: key=a,b,c' });
    else byKey.set(key, i);
    if (setKeys.has(key)) diagnostics.push({ file: SWEEP_FILE, line: i + 1, column: 1, message: `--sweep ${arg}: ${key} is also given with --set`, hint: 'drop the --set, or sweep a single value' });
  });
  if (diagnostics.length > 0) throw new PipelineError(diagnostics);
  const total = axes.reduce((n, a) => n * a.values.length, 1);
  if (total > MAX_SWEEP_RUNS) {
    throw new PipelineError([{ file: SWEEP_FILE, line: 1, column: 1, message: `the sweep has ${total} runs (more than ${MAX_SWEEP_RUNS})`, hint: 'sweep fewer values' }]);
  }
  const combinations: SweepCombination[] = [];
  for (let index = 0; index < total; index++) {
    let rest = index;
    const picked: SweepValue[] = new Array<SweepValue>(axes.length);
    for (let a = axes.length - 1; a >= 0; a--) {
      const n = axes[a]!.values.length;
      picked[a] = axes[a]!.values[rest % n]!;
      rest = Math.floor(rest / n);
    }
    combinations.push({
      index,
      overrides: axes.map((axis, a) => `${axis.add ? '+' : ''}${axis.key}=${picked[a]!.text}`),
      params: Object.fromEntries(axes.map((axis, a) => [axis.key, picked[a]!.value])),
    });
  }
  return { axes, combinations };
}

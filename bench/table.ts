// The common shape of a bench (bench/run-all.ts runs them all) and the one table printer they share.
// Each bench file exports `run(options): Promise<BenchTable[]>` and stays runnable on its own
// (`node --import tsx bench/<name>.ts [--quick]`, or `node dist/bench/<name>.js` after the build).
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchTable {
  title: string;
  columns: string[];
  /** One string per column (already formatted; numbers are right-aligned by the printer). */
  rows: string[][];
  /** Lines printed under the table: the baseline, the goal, what was skipped and why. */
  notes?: string[];
}

export interface BenchOptions {
  /** Small sizes and few repetitions: a smoke run that finishes in seconds to a minute. */
  quick: boolean;
}

export type BenchRun = (options: BenchOptions) => Promise<BenchTable[]>;

const NUMERIC = /^[-+]?[\d.,]+\s*(%|x|×|MB\/s|MiB|ms|s|img\/s)?$/;

/** A GitHub-flavoured Markdown table (pastes into issues and notes as-is), then its notes. */
export function formatTable(table: BenchTable): string {
  const all = [table.columns, ...table.rows];
  const widths = table.columns.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const numeric = table.columns.map((_, i) => table.rows.length > 0 && table.rows.every((row) => NUMERIC.test(row[i] ?? '') || (row[i] ?? '') === '' || row[i] === '-'));
  const line = (row: string[]) =>
    `| ${widths.map((w, i) => (numeric[i] ? (row[i] ?? '').padStart(w) : (row[i] ?? '').padEnd(w))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  const out = [`### ${table.title}`, '', line(table.columns), rule, ...table.rows.map(line)];
  if (table.notes && table.notes.length > 0) out.push('', ...table.notes.map((note) => `- ${note}`));
  return out.join('\n');
}

export function printTables(tables: BenchTable[]): void {
  for (const table of tables) process.stdout.write(`${formatTable(table)}\n\n`);
}

/** One line naming the machine, so a table pasted elsewhere says where it was measured. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `node ${process.version}, ${os.availableParallelism()} core(s) ${cpu}, load ${os.loadavg()[0]!.toFixed(1)}`;
}

/** True when the module at `importMetaUrl` is the script node was started with. */
export function isMainModule(importMetaUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  const self = fileURLToPath(importMetaUrl);
  const started = path.resolve(script);
  return started === self || started === self.replace(/\.[jt]s$/, '');
}

/** `--quick` on the command line. */
export function quickFromArgv(argv: readonly string[] = process.argv.slice(2)): boolean {
  return argv.includes('--quick');
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

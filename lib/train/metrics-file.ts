// metrics.jsonl: one JSON object per line, `type` step or epoch (see lib/train/loop.ts MetricsLine).
import fs from 'node:fs';
import type { MetricsLine } from './loop.js';

export function formatMetricsJsonl(lines: readonly MetricsLine[]): string {
  return lines.map((line) => JSON.stringify(line)).join('\n') + (lines.length > 0 ? '\n' : '');
}

/** Reads metrics.jsonl; a bad line is an error naming the file and line number. */
export function readMetricsJsonl(file: string): MetricsLine[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read metrics (${(error as Error).message}); re-run the train stage`);
  }
  const out: MetricsLine[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      throw new Error(`${file}:${index + 1}: not JSON (${(error as Error).message}); the file is damaged: re-run the train stage`);
    }
    const line = parsed as { type?: unknown; epoch?: unknown };
    if (typeof parsed !== 'object' || parsed === null || (line.type !== 'step' && line.type !== 'epoch') || typeof line.epoch !== 'number') {
      throw new Error(`${file}:${index + 1}: expected an object with type "step" or "epoch" and a numeric epoch`);
    }
    out.push(parsed as MetricsLine);
  });
  return out;
}

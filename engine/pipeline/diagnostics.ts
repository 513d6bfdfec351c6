// Diagnostics: every problem in a pipeline is reported against the place a user wrote it (a YAML file or
// a --set argument), all problems at once, formatted like a compiler's `file:line:column: error: ...`.

export interface Diagnostic {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  message: string;
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: error: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ''}`;
}

/** Thrown by the loader; `message` holds every diagnostic formatted, one per line, in source order. */
export class PipelineError extends Error {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    const sorted = sortDiagnostics(diagnostics);
    super(sorted.map(formatDiagnostic).join('\n'));
    this.name = 'PipelineError';
    this.diagnostics = sorted;
  }
}

/** Source order: the file first (the pipeline before `<--set>`), then line, column; duplicates dropped. */
function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const unique = diagnostics.filter((d) => {
    const key = `${d.file}:${d.line}:${d.column}: ${d.message}`; // one message per place, whatever the hints
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // A stable sort keeps the order of discovery between diagnostics at one place.
  return unique.sort((a, b) => fileRank(a.file) - fileRank(b.file) || a.line - b.line || a.column - b.column);
}

function fileRank(file: string): number {
  return file.startsWith('<') ? 1 : 0;
}

/** Backticks a name for a message. */
export function q(name: string | number): string {
  return `\`${name}\``;
}

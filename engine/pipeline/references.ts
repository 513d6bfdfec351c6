// The `${...}` reference syntax: `${params.a.b}` (a param value), `${stages.S.outs.O}` (an upstream stage's
// output, resolved to a path at execution time) and `${outs.O}` (a command stage's own output). `$${`
// writes a literal `${` (e.g. for a shell variable in a command).
import { didYouMean } from './suggest.js';

export type Token =
  | { type: 'text'; text: string }
  | { type: 'param'; path: string[]; raw: string }
  | { type: 'stage'; stage: string; output: string; raw: string }
  | { type: 'own'; output: string; raw: string };

export interface TokenError {
  /** Offset of the problem in the string. */
  offset: number;
  message: string;
  hint?: string;
}

const NAMESPACES = ['params', 'stages', 'outs'];

export function tokenize(text: string): { tokens: Token[]; errors: TokenError[] } {
  const tokens: Token[] = [];
  const errors: TokenError[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      literal += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      literal += text[i];
      i++;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      errors.push({ offset: i, message: `unterminated reference \`${text.slice(i)}\``, hint: 'close it with `}`, or write `$${` for a literal `${`' });
      literal += text.slice(i);
      break;
    }
    const raw = text.slice(i, close + 1);
    const token = parseReference(raw.slice(2, -1), raw, i, errors);
    if (token) {
      if (literal) tokens.push({ type: 'text', text: literal });
      literal = '';
      tokens.push(token);
    }
    i = close + 1;
  }
  if (literal) tokens.push({ type: 'text', text: literal });
  return { tokens, errors };
}

function parseReference(body: string, raw: string, offset: number, errors: TokenError[]): Token | undefined {
  const segments = body.split('.');
  const namespace = segments[0]!;
  if (segments.some((s) => s === '' || /\s/.test(s))) {
    errors.push({ offset, message: `malformed reference \`${raw}\``, hint: 'references look like `${params.a.b}`, `${stages.S.outs.O}` or `${outs.O}`' });
    return undefined;
  }
  if (namespace === 'params' && segments.length >= 2) return { type: 'param', path: segments.slice(1), raw };
  if (namespace === 'stages' && segments.length === 4 && segments[2] === 'outs') {
    return { type: 'stage', stage: segments[1]!, output: segments[3]!, raw };
  }
  if (namespace === 'outs' && segments.length === 2) return { type: 'own', output: segments[1]!, raw };
  if (NAMESPACES.includes(namespace)) {
    const shape = namespace === 'params' ? '${params.a.b}' : namespace === 'stages' ? '${stages.S.outs.O}' : '${outs.O}';
    errors.push({ offset, message: `malformed reference \`${raw}\``, hint: `write it as \`${shape}\`` });
    return undefined;
  }
  const nearest = didYouMean(namespace, NAMESPACES);
  errors.push({
    offset,
    message: `unknown reference \`${raw}\`: references start with params, stages or outs`,
    hint: nearest ?? 'write `$${` for a literal `${` (e.g. a shell variable)',
  });
  return undefined;
}

/** Escapes literal text for a document that will be read back: `${` → `$${`. */
export function escapeLiteral(text: string): string {
  return text.replaceAll('${', () => '$${'); // a function: in a replacement string `$$` means `$`
}

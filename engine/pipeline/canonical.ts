// Canonical JSON: one spelling per value, so that equal configurations hash equally whatever the key order
// or the YAML spelling of their numbers (`1.0e-3`, `1e-3` and `0.001` are one number once parsed).
import type { JsonValue } from '../stage.js';

/**
 * Serialises `value` with object keys sorted by code unit, no whitespace, and numbers in the shortest form
 * that round-trips (what `Number.prototype.toString` gives). `-0` becomes `0`. Non-finite numbers and
 * values that are not JSON (undefined, functions, ...) are refused, because they have no JSON spelling.
 */
export function canonicalJson(value: JsonValue): string {
  return write(value, '$');
}

function write(value: unknown, where: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`canonicalJson: ${where} is ${value}, which JSON cannot represent`);
      return Object.is(value, -0) ? '0' : JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item, i) => write(item, `${where}[${i}]`)).join(',')}]`;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      const members: string[] = [];
      for (const key of keys) {
        if (record[key] === undefined) continue; // as JSON.stringify: an undefined member is absent
        members.push(`${JSON.stringify(key)}:${write(record[key], `${where}.${key}`)}`);
      }
      return `{${members.join(',')}}`;
    }
    default:
      throw new Error(`canonicalJson: ${where} is a ${typeof value}, which is not a JSON value`);
  }
}

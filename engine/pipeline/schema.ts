// JSON Schema checks with ajv (the pipeline file's schema and each kind's params schema), with ajv's
// errors turned into diagnostics that point at the offending key or value and say what was expected.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type KeywordDefinition, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import type { StageCatalogEntry } from '../catalog.js';
import type { JsonValue } from '../stage.js';
import { q, type Diagnostic } from './diagnostics.js';
import type { DocPath, SourceLocation } from './source.js';
import { didYouMean, suggest } from './suggest.js';

/** How to talk about and locate paths relative to the validated value. */
export interface SchemaContext {
  /** `note` is appended to the message (e.g. which param the value came through). */
  locate(rel: DocPath, part: 'key' | 'value'): { location: SourceLocation; note: string };
  /** The object at `rel`, for "unknown key in ..." and "... is missing". */
  where(rel: DocPath): string;
  /** The value at `rel`, for "... must be ...". */
  name(rel: DocPath): string;
  /** What a property is called here: `key` (pipeline file) or `param` (a kind's params). */
  noun: string;
}

let ajvInstance: Ajv | undefined;
let pipelineCheck: ValidateFunction | undefined;
/** Compiled once per schema object: a catalog entry's schema never changes while the process runs. */
const kindChecks = new WeakMap<object, ValidateFunction>();

function ajv(): Ajv {
  if (ajvInstance) return ajvInstance;
  // strict: false because kinds' schemas are written by many hands; verbose gives the data and parent schema to messages.
  ajvInstance = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: false, validateFormats: false });
  ajvInstance.addKeyword(divisibleByPowerOfTwo);
  return ajvInstance;
}

/**
 * `"divisibleByPowerOfTwo": { "exponentFrom": "<sibling>" }` on an integer or a list of integers: each must be
 * a multiple of 2^<sibling's value> (e.g. a size halved <sibling> times). A cross-field rule JSON Schema cannot
 * state; defaults are applied before it runs, so an omitted sibling counts with its default. A sibling that
 * is not a non-negative integer is left to its own schema to report.
 */
const checkDivisibleByPowerOfTwo: SchemaValidateFunction = (schema: { exponentFrom: string }, data: unknown, _parentSchema, cxt) => {
  const exponent = (cxt?.parentData as Record<string, unknown> | undefined)?.[schema.exponentFrom];
  if (typeof exponent !== 'number' || !Number.isInteger(exponent) || exponent < 0) return true;
  const divisor = 2 ** exponent;
  const values = Array.isArray(data) ? data : [data];
  if (values.every((v) => typeof v !== 'number' || v % divisor === 0)) return true;
  checkDivisibleByPowerOfTwo.errors = [
    {
      keyword: 'divisibleByPowerOfTwo',
      message: `must be divisible by 2^${exponent} = ${divisor} (${schema.exponentFrom})`,
      params: { exponentFrom: schema.exponentFrom, exponent, divisor },
    },
  ];
  return false;
};
const divisibleByPowerOfTwo: KeywordDefinition = {
  keyword: 'divisibleByPowerOfTwo',
  type: ['integer', 'array'],
  schemaType: 'object',
  errors: true,
  validate: checkDivisibleByPowerOfTwo,
};

export function pipelineValidator(): ValidateFunction {
  if (!pipelineCheck) {
    const schema = JSON.parse(fs.readFileSync(path.join(findSchemasDir(), 'pipeline.schema.json'), 'utf8')) as Record<string, unknown>;
    pipelineCheck = ajv().compile(withoutId(schema));
  }
  return pipelineCheck;
}

export function kindValidator(entry: StageCatalogEntry): ValidateFunction {
  let check = kindChecks.get(entry.paramsSchema);
  if (!check) {
    check = ajv().compile(withoutId(entry.paramsSchema));
    kindChecks.set(entry.paramsSchema, check);
  }
  return check;
}

/** Two catalogs (or tests) may hold schemas with one `$id`; ajv refuses to register an id twice. */
function withoutId(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

/** Where the schemas live: found upward from this module (works from the sources and from dist/). */
export function findSchemasDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'schemas', 'pipeline.schema.json'))) return path.join(dir, 'schemas');
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`schemas/pipeline.schema.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Validates `data` (mutated: defaults applied) and maps the errors to diagnostics. */
export function checkAgainstSchema(validate: ValidateFunction, data: JsonValue, context: SchemaContext): { diagnostics: Diagnostic[] } {
  if (validate(data)) return { diagnostics: [] };
  const errors = validate.errors ?? [];
  const diagnostics: Diagnostic[] = [];
  // A typo'd key whose suggestion is a missing required key is one mistake: report the typo only.
  const suggestedFor = new Set<string>();
  for (const error of errors) {
    if (error.keyword !== 'additionalProperties') continue;
    const unknown = String(error.params.additionalProperty);
    const nearest = suggest(unknown, allowedKeys(error));
    if (nearest) suggestedFor.add(`${error.instancePath}\n${nearest}`);
  }
  const push = (rel: DocPath, part: 'key' | 'value', message: string, hint?: string) => {
    const { location, note } = context.locate(rel, part);
    diagnostics.push({ ...location, message: message + note, ...(hint ? { hint } : {}) });
  };
  for (const error of errors) {
    const rel = pointerToPath(error.instancePath);
    switch (error.keyword) {
      case 'if':
      case 'propertyNames':
        break; // reported through the branch or name errors that caused them
      case 'additionalProperties': {
        const unknown = String(error.params.additionalProperty);
        const allowed = allowedKeys(error);
        const expected = allowed.length > 0 ? `; expected one of: ${allowed.join(', ')}` : '';
        push([...rel, unknown], 'key', `unknown ${context.noun} ${q(unknown)} in ${context.where(rel)}${expected}`, didYouMean(unknown, allowed));
        break;
      }
      case 'required': {
        const missing = String(error.params.missingProperty);
        if (suggestedFor.has(`${error.instancePath}\n${missing}`)) break;
        push(rel, 'key', `${context.where(rel)} is missing required ${context.noun} ${q(missing)}`, schemaDescription(error, missing));
        break;
      }
      case 'type': {
        // In YAML words: a map and a list, not a JSON object and array.
        const yamlWords: Record<string, string> = { object: 'map', array: 'list' };
        const expected = ([] as string[]).concat(error.params.type as string | string[]).map((t) => yamlWords[t] ?? t).join(' or ');
        push(rel, 'value', `${context.name(rel)} must be ${article(expected)}, got ${show(error.data)}`, describedHint(error));
        break;
      }
      case 'divisibleByPowerOfTwo': {
        const divisor = Number(error.params.divisor);
        const values = new Set(([] as unknown[]).concat(error.data).filter((v): v is number => typeof v === 'number' && v % divisor !== 0));
        const nearest = [...values].map((v) => `${v} → ${Math.max(divisor, Math.floor(v / divisor) * divisor)} or ${Math.ceil(v / divisor) * divisor}`);
        push(rel, 'value', `${context.name(rel)} ${JSON.stringify(error.data).replaceAll(',', ', ')} ${error.message ?? 'is invalid'}`, `nearest multiples of ${divisor}: ${nearest.join('; ')}`);
        break;
      }
      case 'enum': {
        const allowed = (error.params.allowedValues as JsonValue[]).map((v) => JSON.stringify(v));
        const hint = typeof error.data === 'string' ? didYouMean(error.data, (error.params.allowedValues as JsonValue[]).filter((v): v is string => typeof v === 'string')) : undefined;
        push(rel, 'value', `${context.name(rel)} must be one of ${allowed.join(', ')}, got ${show(error.data)}`, hint);
        break;
      }
      default: {
        if (error.propertyName !== undefined) {
          push([...rel, error.propertyName], 'key', `${q(error.propertyName)} is not a valid name in ${context.where(rel)}: it ${error.message ?? 'is invalid'}`, describedHint(error));
        } else {
          push(rel, 'value', `${context.name(rel)} ${error.message ?? 'is invalid'}, got ${show(error.data)}`, describedHint(error));
        }
      }
    }
  }
  return { diagnostics };
}

function allowedKeys(error: ErrorObject): string[] {
  const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return properties ? Object.keys(properties) : [];
}

function schemaDescription(error: ErrorObject, property: string): string | undefined {
  const properties = (error.parentSchema as { properties?: Record<string, { description?: string }> } | undefined)?.properties;
  const description = properties?.[property]?.description;
  return description ? `${property}: ${description}` : undefined;
}

function describedHint(error: ErrorObject): string | undefined {
  const description = (error.parentSchema as { description?: unknown } | undefined)?.description;
  return typeof description === 'string' ? description : undefined;
}

/** `/stages/a~1b/0` → ['stages', 'a/b', 0]. */
function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function show(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 37)}...` : text}`;
}

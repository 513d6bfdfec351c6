// The one validator setup for the files that pass between stages (DVC's rule: every such file has a type, a
// schema and a reader that checks it). A contract pairs a TypeScript type with its JSON Schema; reading
// parses, validates and names the file, the JSON path and the stage to re-run, so no stage casts JSON.parse.
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { writeJsonAtomic } from '../atomic.js';

// allErrors: a hand-edited file gets every problem at once; strict off: schemas use `description` freely.
const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });

export class ContractError extends Error {
  override name = 'ContractError';
}

export interface Contract<T> {
  /** What the file is, for messages ("transform.json"). */
  readonly name: string;
  /** Which stage writes it, for "re-run X". */
  readonly producer: string;
  readonly schema: Record<string, unknown>;
  /** Checks JSON Schema cannot state (cross-field rules); throws with a message. */
  readonly refine?: (value: T) => string | null;
  /** Compiled lazily, once. */
  validator?: ValidateFunction;
}

export function defineContract<T>(spec: Omit<Contract<T>, 'validator'>): Contract<T> {
  return { ...spec };
}

function formatError(error: ErrorObject): string {
  const at = error.instancePath === '' ? '(top level)' : error.instancePath.slice(1).replace(/\//g, '.');
  if (error.keyword === 'additionalProperties') return `${at}: unknown key ${JSON.stringify(error.params.additionalProperty)}`;
  if (error.keyword === 'required') return `${at}: missing ${JSON.stringify(error.params.missingProperty)}`;
  if (error.keyword === 'enum') return `${at}: must be one of ${JSON.stringify(error.params.allowedValues)}`;
  return `${at}: ${error.message ?? error.keyword}`;
}

/** Validates `value` as `contract`; `where` names the file or the object for the error. */
export function validateContract<T>(contract: Contract<T>, value: unknown, where: string): T {
  contract.validator ??= ajv.compile(contract.schema);
  if (!contract.validator(value)) {
    const problems = (contract.validator.errors ?? []).slice(0, 6).map(formatError);
    throw new ContractError(`${where}: not a valid ${contract.name} (${problems.join('; ')}); re-run ${contract.producer} (see docs/contracts.md)`);
  }
  const refined = contract.refine?.(value as T) ?? null;
  if (refined !== null) throw new ContractError(`${where}: ${contract.name}: ${refined}; re-run ${contract.producer}`);
  return value as T;
}

/** Reads, parses and validates a contract file. */
export async function readContract<T>(contract: Contract<T>, file: string): Promise<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ContractError(`${file}: cannot read ${contract.name} (${(error as Error).message}); re-run ${contract.producer}`, { cause: error });
  }
  return validateContract(contract, parsed, file);
}

/** Validates, then writes atomically: a producer can never hand on a file its consumers would refuse. */
export async function writeContract<T>(contract: Contract<T>, file: string, value: T): Promise<void> {
  validateContract(contract, value, `${file} (being written)`);
  await writeJsonAtomic(file, value);
}

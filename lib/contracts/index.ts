// The typed files that pass between stages (docs/contracts.md): each a type, a JSON Schema and a validating
// reader/writer through the one validator setup (validator.ts).
export { ContractError, defineContract, readContract, validateContract, writeContract, type Contract } from './validator.js';
export * from './labels.js';
export * from './ingest-index.js';
export * from './record-spec.js';
export * from './transform.js';
export * from './split.js';
export * from './pairs.js';

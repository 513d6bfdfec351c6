// What the engine knows about built-in stage kinds without importing their (possibly heavy) modules:
// a registry written at build time (dist/stages/registry.json) from each stage module's declaration.
import type { InputDeclaration, JsonObject, OutputDeclaration } from './stage.js';

export interface StageCatalogEntry {
  kind: string;
  version: string;
  description: string;
  inputs: Record<string, InputDeclaration>;
  outputs: Record<string, OutputDeclaration>;
  /** The JSON Schema of the params (from schemas/stages/<kind>.schema.json). */
  paramsSchema: JsonObject;
  /** Absolute path of the compiled module to import when the stage runs. */
  modulePath: string;
  /** Digest of the stage's source and every project module it imports (and the versions of packages it imports). */
  codeDigest: string;
  /** The files behind codeDigest, relative to the project root: shown when a stage's code changed. */
  codeFiles: Record<string, string>;
  /** Absolute path of the kind's platform probe module (StageKind.platform), if it declares one. */
  platformModule?: string;
}

export interface StageCatalog {
  get(kind: string): StageCatalogEntry | undefined;
  kinds(): string[];
}

// The resolved pipeline: what the executor runs, caches and snapshots.
import type { StageCatalog } from '../catalog.js';
import type { JsonObject } from '../stage.js';

export type InputRef =
  | { type: 'stage'; stage: string; output: string }
  /** An absolute path of a file or folder the pipeline names. */
  | { type: 'path'; path: string };

/** A command's `run` text: literal pieces and references, substituted with real paths at execution time. */
export type CommandPart = string | InputRef | { type: 'own-output'; output: string };

export interface ParamSource {
  file: string;
  line: number;
  column: number;
  /** The pipeline param (`train.lr`) the value came through, when the stage referenced `${params...}`. */
  viaParam?: string;
}

export interface ResolvedStage {
  name: string;
  /** null for a command stage. */
  kind: string | null;
  /** Resolved, validated, defaults applied ({} for command stages). */
  params: JsonObject;
  /** Built-ins: by input name; command stages: deps as `dep0`, `dep1`, ... and the refs used in `run` as `run0`, `run1`, ... */
  inputs: Record<string, InputRef>;
  /** Command stages: `path` relative to the stage's output folder. */
  outputs: Record<string, { type: 'file' | 'dir'; path?: string }>;
  /** Every upstream stage (refs + needs), deduplicated, in order of first mention. */
  needs: string[];
  /** Command stages only. */
  command?: CommandPart[];
  /** The run text with ${params} resolved but stage refs left as written: part of the cache key. */
  commandText?: string;
  /** Where each param leaf came from (dotted path, list indices as numbers: `size.0`); defaults are absent. */
  paramSources: Record<string, ParamSource>;
}

export interface ResolvedPipeline {
  name: string;
  /** Absolute path of the pipeline file. */
  file: string;
  baseDir: string;
  /** Exactly as typed. */
  overrides: string[];
  /** The whole document after overrides and ${params} interpolation (stage refs kept as text), stage params with defaults. */
  config: JsonObject;
  /** The resolved params block. */
  params: JsonObject;
  stages: Record<string, ResolvedStage>;
  /** A topological order (stable: file order where free). */
  order: string[];
  metrics?: InputRef;
  report: InputRef[];
}

export interface LoadOptions {
  /** The directory `flow` was started in: relative paths in the pipeline resolve against it. */
  baseDir: string;
  /** `--set` arguments, exactly as typed. */
  overrides?: string[];
  catalog: StageCatalog;
}

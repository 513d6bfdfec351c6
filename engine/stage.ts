// The contract between the engine and every stage kind. The engine knows nothing about images or
// models: it hands a stage resolved params, absolute input paths and output paths to fill, and gets
// back whether the stage finished or stopped at a checkpoint.
import type { Logger } from 'pino';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What a stage is given while it runs. */
export interface StageContext<Params = JsonObject> {
  /** The stage's name in the pipeline (not its kind). */
  readonly stageName: string;
  /** Params after reference resolution and schema validation (defaults applied). */
  readonly params: Params;
  /** Input name → absolute path of a file or folder: an upstream stage's output or a path the pipeline names. */
  readonly inputs: Readonly<Record<string, string>>;
  /**
   * Output name → absolute path the stage must create (a file or a folder, as declared). The paths lie in a
   * temporary folder; the engine moves them into the cache only when `run` returns `done`.
   */
  readonly outs: Readonly<Record<string, string>>;
  /** Scratch space, discarded after the stage. */
  readonly workDir: string;
  /**
   * Survives interruption and crashes; belongs to this stage's cache key, so a stage whose params or inputs
   * changed never sees another key's checkpoint. Write into it atomically (temp file + rename).
   */
  readonly checkpointDir: string;
  /** Aborted on the first SIGINT/SIGTERM: finish the current step, checkpoint, return `interrupted`. */
  readonly signal: AbortSignal;
  /** Structured log (pino), written to the run's log.ndjson. */
  readonly log: Logger;
  /** A human line on the console (prefixed with the stage name) and in the log. */
  print(line: string): void;
  /** True when stderr is a terminal: a stage may draw a progress bar there. */
  readonly interactive: boolean;
  /** Facts about the environment that shaped the result (e.g. the tensor backend); merged into env.json. */
  recordEnv(facts: JsonObject): void;
  /**
   * The platform facts in this stage's cache key (see StageKind.platform; `{}` when the kind declares none).
   * A stage whose real platform turns out different (a backend that would not start) must fail, not
   * commit outputs under a key that names another platform.
   */
  readonly platform: JsonObject;
}

/** What a platform probe is given: the stage's resolved params and its inputs' absolute paths (all done). */
export interface PlatformRequest<Params = JsonObject> {
  readonly params: Params;
  readonly inputs: Readonly<Record<string, string>>;
}

/** A platform probe module's export: the facts that change this stage's outputs, cheaply (no TensorFlow). */
export type PlatformProbe<Params = JsonObject> = (request: PlatformRequest<Params>) => Promise<JsonObject> | JsonObject;

export type StageOutcome =
  | { status: 'done'; summary?: JsonObject }
  | { status: 'interrupted'; summary?: JsonObject };

export interface InputDeclaration {
  description: string;
  /** An optional input may be left out of the pipeline. */
  optional?: boolean;
}

export interface OutputDeclaration {
  description: string;
  type: 'file' | 'dir';
}

/**
 * A built-in stage kind. Each lives in `stages/<folder>/index.ts` and default-exports one of these.
 * Its params schema is `schemas/stages/<kind>.schema.json`. The engine imports a stage module only when
 * that stage actually runs, so a module may import heavy libraries (TensorFlow.js, sharp) at top level.
 */
export interface StageKind<Params = JsonObject> {
  /** e.g. `tfrecord.write`. */
  kind: string;
  /** Bump when the meaning of outputs changes; part of the cache key (besides the code digest). */
  version: string;
  description: string;
  inputs: Record<string, InputDeclaration>;
  outputs: Record<string, OutputDeclaration>;
  /**
   * Optional: a module (path relative to this stage module) exporting `platformFacts: PlatformProbe`, the
   * platform facts that change this kind's outputs (e.g. the tensor backend that will run). They join the
   * cache key, so a result computed on one platform is never reused on another. The probe runs on every cache
   * lookup, so it stays light; the executor (local, a scheduler's job) is never one of these facts.
   */
  platform?: string;
  run(ctx: StageContext<Params>): Promise<StageOutcome>;
}

/** Helper so stage modules get type checking of their declaration without repeating the Params type. */
export function defineStage<Params>(stage: StageKind<Params>): StageKind<Params> {
  return stage;
}

// The typed hyper-parameter set (schemas/stages/hparams.schema.json is the authority on names and defaults).
// The hparams stage writes it as hparams.json; train reads it back through readHparams, which re-validates
// the file against the same schema so a hand-edited or stale hparams.json fails with a clear message.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import type { AugmentConfig } from '../preprocess/augment.js';
import type { BackendPreference } from '../tf/backend.js';

export type OptimizerName = 'adam' | 'sgd';
export type LossName = 'bce' | 'dice' | 'bce_dice' | 'ce' | 'ce_dice';
export type MetricMode = 'auto' | 'min' | 'max';

export interface ScheduleConfig {
  type: 'constant' | 'step' | 'cosine' | 'plateau';
  step_epochs: number;
  gamma: number;
  min_lr: number;
  factor: number;
  patience: number;
  metric: string;
  mode: MetricMode;
}

/** The augmentation hparams.json holds: exactly what lib/preprocess/augment.ts applies. */
export type AugmentSettings = AugmentConfig;

export interface EarlyStoppingConfig {
  metric: string;
  patience: number;
  mode: MetricMode;
  min_delta: number;
}

export interface Hparams {
  /** Spatial size of the items: [H, W] or [D, H, W]; null = whatever the training tensors have. */
  input_size: number[] | null;
  batch_size: number;
  epochs: number;
  optimizer: OptimizerName;
  lr: number;
  momentum: number;
  weight_decay: number;
  schedule: ScheduleConfig;
  loss: LossName;
  augment: AugmentSettings;
  filters: number;
  depth: number;
  seed: number;
  val_every: number;
  checkpoint_every_steps: number;
  early_stopping: EarlyStoppingConfig | null;
  best_metric: string;
  best_mode: MetricMode;
  backend: BackendPreference;
  workers: 'auto' | 1 | 2;
}

/** min for metric names that are losses, max for the rest (Dice, IoU ...), unless the mode says otherwise. */
export function resolveMode(metric: string, mode: MetricMode): 'min' | 'max' {
  if (mode !== 'auto') return mode;
  return metric.includes('loss') ? 'min' : 'max';
}

function findSchemaFile(): string {
  // Works from the source tree (lib/train/) and from the build (dist/lib/train/): walk up to schemas/.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'schemas', 'stages', 'hparams.schema.json');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('schemas/stages/hparams.schema.json not found above lib/train');
    dir = parent;
  }
}

let validator: ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } | undefined;

function getValidator(): NonNullable<typeof validator> {
  if (!validator) {
    const schema = JSON.parse(fs.readFileSync(findSchemaFile(), 'utf8')) as object;
    const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false });
    validator = ajv.compile(schema);
  }
  return validator;
}

/** Applies the schema's defaults to a (possibly partial) set and validates it; `source` names it in errors. */
export function resolveHparams(partial: object, source = 'hparams'): Hparams {
  const copy = structuredClone(partial) as Record<string, unknown>;
  const validate = getValidator();
  if (!validate(copy)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
    throw new Error(`${source}: invalid hyper-parameters: ${problems}`);
  }
  return copy as unknown as Hparams;
}

export function readHparams(file: string): Hparams {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: cannot read hparams.json (${(error as Error).message}); re-run the hparams stage`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: hparams.json must hold an object`);
  return resolveHparams(raw, file);
}

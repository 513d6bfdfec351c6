// The label map, declared once with the dataset (an ingest stage's params) and carried by every file after it
// (index.json → spec.json → transform.json → pairs.json), so ingest, preprocess, predict and evaluate agree on
// what each stored value means. A class's position is the class index the model learns; classes[0] is the
// background. `ignore` values count neither as foreground nor as background; `regions` are what evaluate
// scores (named sets of stored values, e.g. BraTS WT = {1, 2, 4}).
import { defineContract, validateContract } from './validator.js';

export interface LabelClass {
  /** The value stored in the dataset's own label files (0..255). */
  value: number;
  name: string;
}

export interface LabelSpec {
  classes: LabelClass[];
  ignore: number[];
  regions: Record<string, number[]>;
}

const labelValue = { type: 'integer', minimum: 0, maximum: 255 };

export const labelSpecSchema = {
  type: 'object',
  required: ['classes', 'ignore', 'regions'],
  additionalProperties: false,
  properties: {
    classes: {
      type: 'array',
      minItems: 2,
      items: { type: 'object', required: ['value', 'name'], additionalProperties: false, properties: { value: labelValue, name: { type: 'string', minLength: 1 } } },
    },
    ignore: { type: 'array', items: labelValue },
    regions: { type: 'object', minProperties: 1, additionalProperties: { type: 'array', minItems: 1, items: labelValue } },
  },
};

export const labelSpecContract = defineContract<LabelSpec>({
  name: 'label map',
  producer: 'the ingest stage',
  schema: labelSpecSchema,
  refine: (spec) => labelSpecProblem(spec),
});

/** Cross-field rules: distinct values, ignore disjoint from classes, regions made of non-background classes. */
export function labelSpecProblem(spec: LabelSpec): string | null {
  const values = spec.classes.map((c) => c.value);
  const duplicate = values.find((v, i) => values.indexOf(v) !== i);
  if (duplicate !== undefined) return `label value ${duplicate} is declared twice`;
  const both = spec.ignore.find((v) => values.includes(v));
  if (both !== undefined) return `label value ${both} is both a class and an ignore value`;
  for (const [region, members] of Object.entries(spec.regions)) {
    const unknown = members.find((v) => !values.includes(v));
    if (unknown !== undefined) return `region ${region} holds ${unknown}, which is not a class value (classes: ${values.join(', ')})`;
    if (members.includes(values[0]!)) return `region ${region} holds the background value ${values[0]}`;
  }
  return null;
}

/**
 * The label map from an ingest stage's params: `labels` maps stored values to names ({0: background,
 * 255: lesion}); `background` says which value is the background (default: 0 if declared, else the first
 * key); `regions` default to one region per non-background class. `paramPath` names the params in errors.
 */
export function labelSpecFromParams(
  params: { labels: Record<string, string>; background?: number | null; ignore?: number[]; regions?: Record<string, number[]> | null },
  paramPath: string,
): LabelSpec {
  const entries = Object.entries(params.labels).map(([key, name]) => {
    if (!/^\d+$/.test(key) || Number(key) > 255) throw new Error(`${paramPath}.labels: key "${key}" is not a label value 0..255`);
    return { value: Number(key), name: String(name) };
  });
  if (entries.length < 2) throw new Error(`${paramPath}.labels: declare at least two label values (background and one class), got ${entries.length}`);
  entries.sort((a, b) => a.value - b.value);
  const background = params.background ?? (entries.some((c) => c.value === 0) ? 0 : entries[0]!.value);
  const bg = entries.find((c) => c.value === background);
  if (bg === undefined) throw new Error(`${paramPath}.background: ${background} is not one of the labels (${entries.map((c) => c.value).join(', ')})`);
  const classes = [bg, ...entries.filter((c) => c !== bg)];
  const regions = params.regions ?? Object.fromEntries(classes.slice(1).map((c) => [c.name, [c.value]]));
  const spec: LabelSpec = { classes, ignore: [...(params.ignore ?? [])].sort((a, b) => a - b), regions };
  const problem = labelSpecProblem(spec);
  if (problem !== null) throw new Error(`${paramPath}: ${problem}`);
  return validateContract(labelSpecContract, spec, paramPath);
}

/** stored value → class index (255 for ignore values, which no class takes; -1 elsewhere = not in the map). */
export function classIndexTable(spec: LabelSpec): Int16Array {
  const table = new Int16Array(256).fill(-1);
  spec.classes.forEach((c, index) => (table[c.value] = index));
  for (const v of spec.ignore) table[v] = IGNORE_INDEX;
  return table;
}

/** The class index training targets hold for an ignore value. */
export const IGNORE_INDEX = 255;

/** How many output channels the model has for this label map: 1 sigmoid channel for 2 classes, else K. */
export function modelChannels(spec: LabelSpec): number {
  return spec.classes.length === 2 ? 1 : spec.classes.length;
}

/** Values present in `histogram` (value → count) that neither a class nor `ignore` covers. */
export function valuesOutsideMap(spec: LabelSpec, histogram: ArrayLike<number>): { value: number; count: number }[] {
  const table = classIndexTable(spec);
  const out: { value: number; count: number }[] = [];
  for (let v = 0; v < histogram.length; v++) if (histogram[v]! > 0 && table[v] === -1) out.push({ value: v, count: histogram[v]! });
  return out;
}

/** One reason for a label value outside the map, the same in every stage: the values and the param to set. */
export function outsideMapReason(outside: { value: number; count: number }[], spec: LabelSpec, paramPath: string): string {
  const found = outside.map((o) => `${o.value} (${o.count} px/voxels)`).join(', ');
  const declared = spec.classes.map((c) => c.value).concat(spec.ignore).sort((a, b) => a - b).join(', ');
  return `label value(s) ${found} not in the label map {${declared}}; add them to ${paramPath} (as a class, or to ignore)`;
}

/** 256-bin histogram of label bytes. */
export function labelHistogram(data: Uint8Array): Float64Array {
  const histogram = new Float64Array(256);
  for (let i = 0; i < data.length; i++) histogram[data[i]!]!++;
  return histogram;
}

// predictions/pairs.json (predict → evaluate): each predicted case, its prediction and label files in the
// dataset's own format and values, the label map they are written in, and the rule that made labels of the
// model's outputs.
import { labelSpecSchema, type LabelSpec } from './labels.js';
import { defineContract } from './validator.js';

export type LabelFormat = 'png' | 'nifti';

export interface PairsCase {
  id: string;
  /** Relative to the predictions folder. */
  prediction: string;
  label: string | null;
  /** mm per pixel/voxel in the label map's axis order ([H, W] or [Z, Y, X]). */
  spacing?: number[];
}

export interface PairsFile {
  dataset: string;
  /** The classes' stored values, background first (kept for readers of older pairs.json). */
  labelValues: number[];
  labels: LabelSpec;
  format: LabelFormat;
  decision: { rule: string; threshold: number | null };
  cases: PairsCase[];
}

export const pairsContract = defineContract<PairsFile>({
  name: "predict's pairs.json",
  producer: 'predict',
  schema: {
    type: 'object',
    required: ['dataset', 'labelValues', 'labels', 'format', 'decision', 'cases'],
    properties: {
      dataset: { type: 'string' },
      labelValues: { type: 'array', items: { type: 'integer' } },
      labels: labelSpecSchema,
      format: { enum: ['png', 'nifti'] },
      decision: { type: 'object', required: ['rule', 'threshold'], properties: { rule: { type: 'string' }, threshold: { type: ['number', 'null'] } } },
      cases: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'prediction', 'label'],
          properties: {
            id: { type: 'string' },
            prediction: { type: 'string' },
            label: { type: ['string', 'null'] },
            spacing: { type: 'array', items: { type: 'number' } },
          },
        },
      },
    },
  },
});

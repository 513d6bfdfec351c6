// transform.json (preprocess → predict, export): what predict replays to feed the model exactly as training
// did. Every transform names its dataset kind and carries the label map; the rest depends on the preprocess
// that wrote it: `transform2dContract` (preprocess.2d) or `bratsTransformContract` (preprocess.brats, which
// takes the volume records of BraTS, nnU-Net v2 and Decathlon datasets alike).
import { labelSpecSchema, type LabelSpec } from './labels.js';
import { defineContract } from './validator.js';

export type NormalizeMode = 'imagenet' | 'dataset' | 'none';

export interface TransformHeader {
  dataset: string;
  labels: LabelSpec;
}

export const transformHeaderContract = defineContract<TransformHeader>({
  name: 'transform.json',
  producer: 'the preprocess stage',
  schema: { type: 'object', required: ['dataset', 'labels'], properties: { dataset: { type: 'string' }, labels: labelSpecSchema } },
});

const positiveInt = { type: 'integer', minimum: 1 };

export interface Transform2d extends TransformHeader {
  /** Model input [H, W]. */
  size: [number, number];
  /** Input channels (1 grey, 3 RGB): every picture is converted to this. */
  channels: 1 | 3;
  /** Photo: bilinear; mask: nearest, then stored value → class index via `labels`. */
  resize: { image: 'linear'; mask: 'nearest' };
  /** x = (pixel / 255 - mean[c]) / std[c]. */
  normalize: { mode: NormalizeMode; mean: number[]; std: number[] };
}

export const transform2dContract = defineContract<Transform2d>({
  name: 'transform.json (preprocess.2d)',
  producer: 'preprocess.2d',
  schema: {
    type: 'object',
    required: ['dataset', 'labels', 'size', 'channels', 'resize', 'normalize'],
    properties: {
      dataset: { type: 'string' },
      labels: labelSpecSchema,
      size: { type: 'array', items: positiveInt, minItems: 2, maxItems: 2 },
      channels: { enum: [1, 3] },
      resize: { type: 'object', required: ['image', 'mask'], properties: { image: { const: 'linear' }, mask: { const: 'nearest' } } },
      normalize: {
        type: 'object',
        required: ['mode', 'mean', 'std'],
        properties: {
          mode: { enum: ['imagenet', 'dataset', 'none'] },
          mean: { type: 'array', items: { type: 'number' } },
          std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 } },
        },
      },
    },
  },
  refine: (t) => (t.normalize.mean.length !== t.channels || t.normalize.std.length !== t.channels ? `normalize needs ${t.channels} means and stds` : null),
});

export interface BratsTransform extends TransformHeader {
  mode: 'slices2d' | 'patches3d';
  size?: [number, number];
  patch?: [number, number, number];
  tiling?: string;
  channels?: number;
  classes?: number;
  modalities: string[];
  zscore: 'brain-nonzero';
  /** Channel → [lo, hi] clipped before the z-score (CT). */
  clip?: Record<string, [number, number]>;
  crop: 'brain-bbox';
  /** Stored value → class index of the training targets. */
  labelMap: { train: Record<string, number> };
}

export const bratsTransformContract = defineContract<BratsTransform>({
  name: 'transform.json (preprocess.brats)',
  producer: 'preprocess.brats',
  schema: {
    type: 'object',
    required: ['dataset', 'labels', 'mode', 'modalities', 'labelMap'],
    properties: {
      dataset: { type: 'string' },
      labels: labelSpecSchema,
      mode: { enum: ['slices2d', 'patches3d'] },
      size: { type: 'array', items: positiveInt, minItems: 2, maxItems: 2 },
      patch: { type: 'array', items: positiveInt, minItems: 3, maxItems: 3 },
      tiling: { type: 'string' },
      channels: positiveInt,
      classes: positiveInt,
      modalities: { type: 'array', items: { type: 'string' }, minItems: 1 },
      clip: { type: 'object', additionalProperties: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 } },
      labelMap: { type: 'object', required: ['train'], properties: { train: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } } } },
    },
  },
  refine: (t) => (t.mode === 'slices2d' && !t.size ? 'slices2d needs size [H, W]' : t.mode === 'patches3d' && !t.patch ? 'patches3d needs patch [D, H, W]' : null),
});

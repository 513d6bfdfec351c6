// ingest index.json (ingest → tfrecord.write): the cases of a raw layout, the files they reference with their
// digests, the skipped files with reasons, and the dataset's label map. The sample shape belongs to the dataset
// kind (lib/datasets/<kind>/), which checks it with its own schema.
import type { FileDigest } from '../digest.js';
import type { LabelSpec } from './labels.js';
import { labelSpecSchema } from './labels.js';
import { defineContract } from './validator.js';

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface IngestIndex<Sample = unknown> {
  /** The dataset kind (lib/datasets registry name) whose code reads the samples. */
  dataset: string;
  root: string;
  labels: LabelSpec;
  samples: Sample[];
  skipped: SkippedFile[];
  /** Every file the samples reference (path relative to root) → its size and content digest, sorted by path. */
  files: Record<string, FileDigest>;
}

export const ingestIndexContract = defineContract<IngestIndex>({
  name: 'ingest index.json',
  producer: 'the ingest stage',
  schema: {
    type: 'object',
    required: ['dataset', 'root', 'labels', 'samples', 'skipped', 'files'],
    properties: {
      dataset: { type: 'string', minLength: 1 },
      root: { type: 'string' },
      labels: labelSpecSchema,
      samples: { type: 'array', items: { type: 'object', required: ['id', 'group'], properties: { id: { type: 'string', minLength: 1 }, group: { type: 'string' } } } },
      skipped: { type: 'array', items: { type: 'object', required: ['path', 'reason'], properties: { path: { type: 'string' }, reason: { type: 'string' } } } },
      files: { type: 'object', additionalProperties: { type: 'object', required: ['bytes', 'xxh128'] } },
    },
  },
});

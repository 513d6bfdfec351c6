// A small in-memory catalog of toy stage kinds, so the loader is tested without the real stages.
import type { StageCatalog, StageCatalogEntry } from '../../engine/catalog.js';
import type { JsonObject } from '../../engine/stage.js';

function entry(kind: string, inputs: StageCatalogEntry['inputs'], outputs: StageCatalogEntry['outputs'], paramsSchema: JsonObject): StageCatalogEntry {
  return { kind, version: '1', description: `toy ${kind}`, inputs, outputs, paramsSchema, modulePath: `/nowhere/${kind}.js`, codeDigest: 'toy', codeFiles: {} };
}

const closed = (properties: JsonObject, required: string[] = []): JsonObject => ({
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  required,
  properties,
});

export const toyEntries: StageCatalogEntry[] = [
  entry(
    'toy.ingest',
    { root: { description: 'raw folder' } },
    { index: { description: 'index.json', type: 'file' }, report: { description: 'report folder', type: 'dir' } },
    closed({ strict: { type: 'boolean', default: false, description: 'fail on broken files' } }),
  ),
  entry(
    'toy.write',
    { samples: { description: 'an index' }, extra: { description: 'optional extra', optional: true } },
    { shards: { description: 'shards folder', type: 'dir' } },
    closed({
      shard_size: { type: 'integer', minimum: 1, default: 64, description: 'records per shard' },
      compression: { enum: ['none', 'gzip', 'zlib'], default: 'none', description: 'stream compression' },
    }),
  ),
  entry(
    'toy.train',
    { data: { description: 'dataset' }, hparams: { description: 'hparams.json', optional: true } },
    { model: { description: 'weights', type: 'dir' }, metrics: { description: 'metrics.jsonl', type: 'file' } },
    closed(
      {
        epochs: { type: 'integer', minimum: 1, description: 'passes over the data' },
        lr: { type: 'number', exclusiveMinimum: 0, default: 0.001, description: 'learning rate' },
        size: { type: 'array', items: { type: 'integer' }, default: [64, 64], description: 'input size' },
        optimizer: { enum: ['adam', 'sgd'], default: 'adam', description: 'optimizer' },
        name: { type: 'string', default: 'run', description: 'a label' },
      },
      ['epochs'],
    ),
  ),
  entry(
    'hparams',
    {},
    { hparams: { description: 'hparams.json', type: 'file' } },
    closed({
      epochs: { type: 'integer', description: 'epochs' },
      lr: { type: 'number', description: 'learning rate' },
      seed: { type: 'integer', default: 0, description: 'seed' },
      batch_size: { type: 'integer', default: 8, description: 'batch size' },
    }),
  ),
];

export const toyCatalog: StageCatalog = {
  get: (kind) => toyEntries.find((e) => e.kind === kind),
  kinds: () => toyEntries.map((e) => e.kind),
};

// The image/mask pairs dataset kind (any 2D layout declared by patterns, ingest.ts and layout.ts): records are
// the shared 2D layout with the mask stored in the dataset's own label values, so predictions come back as
// PNGs of those values at each picture's original size, named after the picture's stem.
import path from 'node:path';
import { decodeLabelImage } from '../../image/index.js';
import { bytesFeature, getString } from '../../tfrecord/example.js';
import type { IngestIndex } from '../../contracts/ingest-index.js';
import type { DatasetKind, RecordEncoder } from '../dataset.js';
import { image2dAdapter } from '../image2d/adapter.js';
import { image2dFeatures, image2dFeatureSpec, pictureBytes } from '../image2d/records.js';
import type { ImagePairsSample } from './ingest.js';

function encoder(index: IngestIndex): RecordEncoder {
  const formats = new Set<string>();
  return {
    async encode(value) {
      const sample = value as ImagePairsSample;
      const imageFile = path.resolve(index.root, sample.image);
      const maskFile = path.resolve(index.root, sample.label);
      const picture = await pictureBytes(imageFile, sample.id);
      const mask = await decodeLabelImage(maskFile, { label: maskFile });
      const features = await image2dFeatures(sample, picture, mask, { image: imageFile, mask: maskFile });
      // train, or test when the layout's list file names the case: preprocess keeps test cases out of training.
      features.subset = bytesFeature(sample.subset);
      formats.add(getString(features, 'image/format'));
      return features;
    },
    features: () => ({ ...image2dFeatureSpec(formats.size === 1 ? ([...formats][0] as 'jpeg' | 'png') : undefined), subset: { type: 'bytes', shape: [1], encoding: 'utf8' } }),
  };
}

export const imagePairsKind: DatasetKind = {
  name: 'image-pairs',
  records: 'image2d',
  sampleSchema: {
    type: 'object',
    required: ['id', 'group', 'subset', 'image', 'label'],
    properties: { subset: { enum: ['train', 'test'] }, image: { type: 'string' }, label: { type: 'string' } },
  },
  encoder,
  adapter: image2dAdapter,
};

// The Carvana dataset kind: Kaggle's train/<car>_<NN>.jpg with train_masks/<car>_<NN>_mask.gif (ingest.ts
// finds and analyses them). Records are the shared 2D layout (lib/datasets/image2d/) with the mask normalised
// to 0/255 (GIF palette indices expanded, JPEG-saved masks thresholded); predictions are 0/255 PNGs at the
// original size, written by the shared 2D adapter.
import path from 'node:path';
import type { Features } from '../../tfrecord/example.js';
import { getString } from '../../tfrecord/example.js';
import { decodeMask, MASK_THRESHOLD } from '../../image/index.js';
import type { IngestIndex } from '../../contracts/ingest-index.js';
import type { DatasetKind, RecordEncoder } from '../dataset.js';
import { image2dAdapter } from '../image2d/adapter.js';
import { image2dFeatures, image2dFeatureSpec, pictureBytes } from '../image2d/records.js';
import type { CarvanaSample } from './ingest.js';

/** An ingest index sample (docs/contracts.md). */
export type CarvanaIndexSample = CarvanaSample;

/** Carvana's spec.json features: the shared 2D layout. */
export const carvanaFeatureSpec = image2dFeatureSpec;

/**
 * One ingest sample as Example features: the original photo bytes untouched, the mask normalised to a
 * 1-channel 0/255 PNG (Kaggle GIF palettes expanded, JPEG-saved masks thresholded, which `warn` is told).
 * Errors name the sample and the file.
 */
export async function encodeCarvanaSample(root: string, sample: CarvanaIndexSample, options: { warn?: (message: string) => void } = {}): Promise<Features> {
  const imageFile = path.resolve(root, sample.image);
  const maskFile = path.resolve(root, sample.label);
  const picture = await pictureBytes(imageFile, sample.id);
  const { mask, nonBinary } = await decodeMask(maskFile, { label: maskFile });
  if (nonBinary > 0) options.warn?.(`${maskFile}: ${nonBinary} pixels were neither 0 nor 255 (a mask re-saved as JPEG?); thresholded (> ${MASK_THRESHOLD} is car)`);
  return image2dFeatures(sample, picture, mask, { image: imageFile, mask: maskFile });
}

function encoder(index: IngestIndex): RecordEncoder {
  const formats = new Set<string>();
  return {
    async encode(sample, hooks) {
      const features = await encodeCarvanaSample(index.root, sample as CarvanaIndexSample, hooks);
      formats.add(getString(features, 'image/format'));
      return features;
    },
    features: () => image2dFeatureSpec(formats.size === 1 ? ([...formats][0] as 'jpeg' | 'png') : undefined),
  };
}

export const carvanaKind: DatasetKind = {
  name: 'carvana',
  records: 'image2d',
  sampleSchema: {
    type: 'object',
    required: ['id', 'group', 'image', 'label'],
    properties: { image: { type: 'string' }, label: { type: 'string' } },
  },
  encoder,
  adapter: image2dAdapter,
  colours: { 255: [0, 255, 0] },
};

/** Carvana's predict adapter: the shared 2D one (0/255 from the label map in transform.json). */
export const carvanaAdapter = image2dAdapter;

// split.json (preprocess → predict): the groups (cars, patients, lesion ids ...) on each side of the split and
// the training items of each side. predict selects whole records, so it selects by group.
import { defineContract } from './validator.js';

export interface SplitFile {
  seed: number;
  valFraction: number;
  train: string[];
  val: string[];
  trainIds: string[];
  valIds: string[];
  /** Groups held out by an official list file (image pairs' split_file), predicted with subset "test". */
  test?: string[];
  /** Records without labels (BraTS Validation), never trained on. */
  unlabelled?: string[];
  /** Where the split came from: "seeded" (by seed and val_fraction) or the list file it was read from. */
  source?: string;
}

const strings = { type: 'array', items: { type: 'string' } };

export const splitContract = defineContract<SplitFile>({
  name: 'split.json',
  producer: 'the preprocess stage',
  schema: {
    type: 'object',
    required: ['train', 'val'],
    properties: {
      seed: { type: 'number' },
      valFraction: { type: 'number' },
      train: strings,
      val: strings,
      trainIds: strings,
      valIds: strings,
      test: strings,
      unlabelled: strings,
      source: { type: 'string' },
    },
  },
});

// The dataset facts tfrecord.write adds to spec.json beside the feature spec (lib/tfrecord/spec.ts reads and
// checks the framing part): the label map, so preprocess takes it from the data rather than from a param.
import path from 'node:path';
import { readRecordSpec, SPEC_FILE, type TFRecordSpec } from '../tfrecord/spec.js';
import { labelSpecContract, type LabelSpec } from './labels.js';
import { ContractError, validateContract } from './validator.js';

export interface DatasetRecordSpec extends TFRecordSpec {
  labels: LabelSpec;
}

/** spec.json of a shards (or tfrecord.read data) folder, with its label map checked. */
export async function readDatasetSpec(dir: string): Promise<DatasetRecordSpec> {
  const spec = (await readRecordSpec(dir)) as TFRecordSpec & { labels?: unknown };
  if (spec.labels === undefined) {
    throw new ContractError(`${path.join(dir, SPEC_FILE)}: has no label map ("labels"); it was written by an older tfrecord.write: re-run tfrecord.write`);
  }
  const labels = validateContract(labelSpecContract, spec.labels, `${path.join(dir, SPEC_FILE)} labels`);
  return { ...spec, labels };
}

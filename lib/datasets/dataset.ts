// The one interface behind which everything dataset-specific sits (one folder per kind: lib/datasets/<kind>/,
// looked up by name in lib/datasets/registry.ts). Generic stages ask it how to turn an ingest sample into a
// tf.train.Example and which features that makes (tfrecord.write), how to feed one record to the model exactly
// as preprocess fed training and how to write the model's answer back in the dataset's own form (predict),
// and which colours its classes get in panels. What the stored label values mean is data, not code: the
// label map (lib/contracts/labels.ts) declared once in the ingest stage's params travels with the files.
import type { JsonObject } from '../../engine/stage.js';
import type { IngestIndex } from '../contracts/ingest-index.js';
import type { LabelSpec } from '../contracts/labels.js';
import type { Feature, Features } from '../tfrecord/example.js';
import type { FeatureSpec } from '../tfrecord/spec.js';

/** A label image at the original resolution, in the dataset's own label values (Carvana 0/255; BraTS 0/1/2/4). */
export interface LabelMap {
  data: Uint8Array;
  /** [H, W] for 2D; [Z, Y, X] for 3D (x fastest in memory). */
  shape: number[];
  /** Millimetres per pixel/voxel, same order as shape. */
  spacing: number[];
}

/** An 8-bit RGB picture used as the background of a side-by-side panel. */
export interface RgbImage {
  data: Uint8Array; // interleaved RGB, row-major
  width: number;
  height: number;
}

export interface PreparedCase {
  id: string;
  /** Model inputs, preprocessed as in training: `count` items of shape `itemShape` (e.g. [H, W, C]). */
  x: Float32Array;
  count: number;
  itemShape: number[];
  /** Ground truth at the original resolution, or null where the record has none (BraTS Validation). */
  label: LabelMap | null;
  /** Whatever restore/write need to undo preprocessing (original size, crop box, header facts ...). */
  context: JsonObject;
}

/** How `restore` turns model outputs into labels; predict records it in pairs.json for evaluate. */
export interface Decision {
  rule: string;
  /** The probability threshold applied, or null where there is none (argmax). */
  threshold: number | null;
}

export interface DatasetAdapter {
  /** File format of predictions and labels written by `write`. */
  readonly format: 'png' | 'nifti';
  /** Decode one Example (as read from tfrecord.read's view) and preprocess it per transform.json. */
  prepare(example: Record<string, Feature>, transform: JsonObject): Promise<PreparedCase>;
  /**
   * Model outputs for all `count` items (probabilities: 1 sigmoid channel or K softmax channels per pixel,
   * laid out as the model emits them) → label map at the original resolution in the dataset's values.
   */
  restore(probabilities: Float32Array, channels: number, prepared: PreparedCase, transform: JsonObject): Promise<LabelMap>;
  /** The rule `restore` applies to model outputs of `channels` channels (the same constants, not a copy). */
  decision(channels: number): Decision;
  /** The label map the transform carries (what the written predictions' values mean). */
  labels(transform: JsonObject): LabelSpec;
  /** Writes a label map in the dataset's own format (PNG mask / .nii.gz with the source geometry); returns nothing. */
  write(map: LabelMap, prepared: PreparedCase, file: string): Promise<void>;
  /** File name ending for `write` (".png" / ".nii.gz"). */
  readonly extension: string;
  /** The picture behind the input | label | prediction panel (for 3D: the axial slice `slice`). */
  background(prepared: PreparedCase, slice: number | null): Promise<RgbImage>;
}

/** tfrecord.write's view of one ingest index: Examples one sample at a time, then the features they hold. */
export interface RecordEncoder {
  /** One sample as Example features; errors name the sample and the file. */
  encode(sample: unknown, hooks: { warn(message: string): void }): Promise<Features>;
  /** The feature spec of every Example encoded so far (called once, after the last sample). */
  features(): Record<string, FeatureSpec>;
}

/** An RGB colour per stored label value for the panels' overlays (values without one get a default palette). */
export type ClassColours = Record<number, [number, number, number]>;

export interface DatasetKind {
  /** The registry name, written into index.json, spec.json and transform.json. */
  readonly name: string;
  /** Which preprocess kind reads its records: `image2d` records (preprocess.2d) or BraTS volumes (preprocess.brats). */
  readonly records: 'image2d' | 'volume';
  /** JSON Schema of one index.json sample (beyond the id and group every sample has). */
  readonly sampleSchema: Record<string, unknown>;
  encoder(index: IngestIndex): RecordEncoder;
  readonly adapter: DatasetAdapter;
  readonly colours?: ClassColours;
}

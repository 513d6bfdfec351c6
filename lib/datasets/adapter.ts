// What predict needs from a dataset: how to turn one record of the tfrecord.read view into model inputs
// exactly as preprocess fed training, and how to turn model outputs back into the dataset's own form.
// One implementation per dataset: lib/datasets/carvana.ts and lib/datasets/brats.ts.
import type { JsonObject } from '../../engine/stage.js';
import type { Feature } from '../tfrecord/example.js';

/** A label map at the original resolution, in the dataset's own label values (Carvana 0/255; BraTS 0/1/2/4). */
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
  readonly dataset: 'carvana' | 'brats';
  /** The dataset's own label values, background first. */
  readonly labelValues: number[];
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
  /** Writes a label map in the dataset's own format (PNG mask / .nii.gz with the source geometry); returns nothing. */
  write(map: LabelMap, prepared: PreparedCase, file: string): Promise<void>;
  /** File name ending for `write` (".png" / ".nii.gz"). */
  readonly extension: string;
  /** The picture behind the input | label | prediction panel (for 3D: the axial slice `slice`). */
  background(prepared: PreparedCase, slice: number | null): Promise<RgbImage>;
}

// Summary values as TensorBoard's own writers make them: scalars as TF2 does (a float32 scalar tensor with the
// scalars plugin's metadata), images in the classic Summary.Image form (TensorBoard migrates it to its images
// plugin on load), and the HParams plugin's session start/end records.
import crypto from 'node:crypto';
import {
  DT_FLOAT,
  encodeHParamsPluginData,
  STATUS_SUCCESS,
  type StructValue,
  type SummaryMetadata,
  type SummaryValue,
} from './proto.js';

export const SCALARS_PLUGIN = 'scalars';
export const HPARAMS_PLUGIN = 'hparams';
export const SESSION_START_TAG = '_hparams_/session_start_info';
export const SESSION_END_TAG = '_hparams_/session_end_info';
/** Summary.Image colorspace 3: RGB. */
const RGB = 3;

/** The scalars plugin's metadata (ScalarPluginData version 0 serialises to nothing). */
export function scalarMetadata(): SummaryMetadata {
  return { plugin_data: { plugin_name: SCALARS_PLUGIN } };
}

/** A scalar as tf.summary.scalar writes it; `metadata` is needed only on a tag's first value. */
export function scalarValue(tag: string, value: number, metadata: boolean): SummaryValue {
  return { tag, tensor: { dtype: DT_FLOAT, tensor_shape: {}, float_val: [value] }, ...(metadata ? { metadata: scalarMetadata() } : {}) };
}

/** An encoded PNG (or JPEG) image of `width` x `height` RGB pixels. */
export function imageValue(tag: string, encoded: Uint8Array, width: number, height: number): SummaryValue {
  return { tag, image: { height, width, colorspace: RGB, encoded_image_string: encoded } };
}

export type HParamValue = string | number | boolean;

function structValue(v: HParamValue): StructValue {
  return typeof v === 'number' ? { number_value: v } : typeof v === 'boolean' ? { bool_value: v } : { string_value: v };
}

/**
 * Runs with the same hparams share a group (TensorBoard aggregates them): TensorBoard's own name, the SHA-256
 * of the hparams as compact JSON with sorted keys (equal to Python's json.dumps for these values).
 */
export function hparamsGroupName(hparams: Readonly<Record<string, HParamValue>>): string {
  const sorted: Record<string, HParamValue> = {};
  for (const key of Object.keys(hparams).sort()) sorted[key] = hparams[key]!;
  return crypto.createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

function hparamsValue(tag: string, content: Uint8Array): SummaryValue {
  // The plugin's records carry an empty float tensor (TensorBoard's NULL_TENSOR); the data is in the metadata.
  return { tag, tensor: { dtype: DT_FLOAT, tensor_shape: { dim: [{ size: 0 }] } }, metadata: { plugin_data: { plugin_name: HPARAMS_PLUGIN, content } } };
}

/** The HParams plugin's session start: this run's hyper-parameters. */
export function sessionStartValue(hparams: Readonly<Record<string, HParamValue>>, startTimeSecs: number, groupName = hparamsGroupName(hparams)): SummaryValue {
  const map: Record<string, StructValue> = {};
  for (const key of Object.keys(hparams).sort()) map[key] = structValue(hparams[key]!);
  return hparamsValue(SESSION_START_TAG, encodeHParamsPluginData({ version: 0, session_start_info: { hparams: map, group_name: groupName, start_time_secs: startTimeSecs } }));
}

/** The HParams plugin's session end (status success). */
export function sessionEndValue(endTimeSecs: number, status = STATUS_SUCCESS): SummaryValue {
  return hparamsValue(SESSION_END_TAG, encodeHParamsPluginData({ version: 0, session_end_info: { status, end_time_secs: endTimeSecs } }));
}

// The protocol buffers of TensorBoard's event files, as the subset flow writes and reads, with the field
// numbers of their sources: tensorflow/core/util/event.proto (Event), tensorflow/core/framework/summary.proto
// (Summary, SummaryMetadata), tensor.proto / tensor_shape.proto / types.proto (TensorProto), and the HParams
// plugin's tensorboard/plugins/hparams/plugin_data.proto and api.proto with google/protobuf/struct.proto's
// Value. Fields flow never sets are left out; a reader skips unknown fields, so files with them still decode.
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package flow.tensorboard;

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}

message Summary {
  message Image {
    int32 height = 1;
    int32 width = 2;
    int32 colorspace = 3;
    bytes encoded_image_string = 4;
  }
  message Value {
    string tag = 1;
    oneof value {
      float simple_value = 2;
      Image image = 4;
      TensorProto tensor = 8;
    }
    SummaryMetadata metadata = 9;
  }
  repeated Value value = 1;
}

message SummaryMetadata {
  message PluginData {
    string plugin_name = 1;
    bytes content = 2;
  }
  PluginData plugin_data = 1;
  string display_name = 2;
  string summary_description = 3;
  DataClass data_class = 4;
}

enum DataClass {
  DATA_CLASS_UNKNOWN = 0;
  DATA_CLASS_SCALAR = 1;
  DATA_CLASS_TENSOR = 2;
  DATA_CLASS_BLOB_SEQUENCE = 3;
}

enum DataType {
  DT_INVALID = 0;
  DT_FLOAT = 1;
  DT_DOUBLE = 2;
  DT_STRING = 7;
}

message TensorShapeProto {
  message Dim {
    int64 size = 1;
    string name = 2;
  }
  repeated Dim dim = 2;
  bool unknown_rank = 3;
}

message TensorProto {
  DataType dtype = 1;
  TensorShapeProto tensor_shape = 2;
  int32 version_number = 3;
  bytes tensor_content = 4;
  repeated float float_val = 5 [packed = true];
  repeated double double_val = 6 [packed = true];
  repeated bytes string_val = 8;
}

// google/protobuf/struct.proto
message Value {
  oneof kind {
    int32 null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
  }
}

// tensorboard/plugins/hparams/plugin_data.proto
message HParamsPluginData {
  int32 version = 1;
  oneof data {
    SessionStartInfo session_start_info = 3;
    SessionEndInfo session_end_info = 4;
  }
}

message SessionStartInfo {
  map<string, Value> hparams = 1;
  string model_uri = 2;
  string monitor_url = 3;
  string group_name = 4;
  double start_time_secs = 5;
}

// tensorboard/plugins/hparams/api.proto Status
enum Status {
  STATUS_UNKNOWN = 0;
  STATUS_SUCCESS = 1;
  STATUS_FAILURE = 2;
  STATUS_RUNNING = 3;
}

message SessionEndInfo {
  Status status = 1;
  double end_time_secs = 2;
}
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
root.resolveAll(); // resolves packed encodings and nested types before the first encode

export const EventType = root.lookupType('flow.tensorboard.Event');
export const SummaryMetadataType = root.lookupType('flow.tensorboard.SummaryMetadata');
export const HParamsPluginDataType = root.lookupType('flow.tensorboard.HParamsPluginData');

/** tensorflow DataType values flow uses. */
export const DT_FLOAT = 1;
export const DT_STRING = 7;
export const DATA_CLASS_SCALAR = 1;
export const DATA_CLASS_BLOB_SEQUENCE = 3;
export const STATUS_SUCCESS = 1;

// Plain-object shapes of the messages (protobufjs toObject with longs as numbers, bytes as Uint8Array).
export interface TensorShape {
  dim?: { size?: number; name?: string }[];
}
export interface Tensor {
  dtype?: number;
  tensor_shape?: TensorShape;
  float_val?: number[];
  double_val?: number[];
  string_val?: Uint8Array[];
  tensor_content?: Uint8Array;
}
export interface PluginData {
  plugin_name?: string;
  content?: Uint8Array;
}
export interface SummaryMetadata {
  plugin_data?: PluginData;
  display_name?: string;
  summary_description?: string;
  data_class?: number;
}
export interface SummaryImage {
  height?: number;
  width?: number;
  colorspace?: number;
  encoded_image_string?: Uint8Array;
}
export interface SummaryValue {
  tag?: string;
  simple_value?: number;
  image?: SummaryImage;
  tensor?: Tensor;
  metadata?: SummaryMetadata;
}
export interface Event {
  wall_time?: number;
  step?: number;
  file_version?: string;
  summary?: { value?: SummaryValue[] };
}
export interface StructValue {
  null_value?: number;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
}
export interface HParamsPluginData {
  version?: number;
  session_start_info?: { hparams?: Record<string, StructValue>; model_uri?: string; monitor_url?: string; group_name?: string; start_time_secs?: number };
  session_end_info?: { status?: number; end_time_secs?: number };
}

// Longs as numbers (steps fit in 2^53); bytes stay Uint8Array (Buffer in Node).
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: false };

/**
 * A copy of a plain message object without the proto3 defaults (0, false, '') of fields outside a oneof, so the
 * bytes are what protobuf's own serialisers write: they leave such fields out, protobufjs writes what is set.
 * A oneof member is kept whatever its value (its presence is the information).
 */
function withoutDefaults(type: protobuf.Type, message: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(message)) {
    const field = type.fields[name];
    if (field === undefined || value === undefined || value === null) continue;
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    if (nested && field.map) {
      out[name] = Object.fromEntries(Object.entries(value as Record<string, Record<string, unknown>>).map(([k, v]) => [k, withoutDefaults(nested, v)]));
    } else if (nested && field.repeated) {
      out[name] = (value as Record<string, unknown>[]).map((v) => withoutDefaults(nested, v));
    } else if (nested) {
      out[name] = withoutDefaults(nested, value as Record<string, unknown>);
    } else if (field.partOf !== null || field.repeated || !(value === 0 || value === false || value === '')) {
      out[name] = value;
    }
  }
  return out;
}

function encode(type: protobuf.Type, message: object, what: string): Uint8Array {
  const plain = withoutDefaults(type, message as Record<string, unknown>);
  const problem = type.verify(plain);
  if (problem) throw new Error(`invalid ${what}: ${problem}`);
  return type.encode(plain).finish();
}

export function encodeEvent(event: Event): Uint8Array {
  return encode(EventType, event, 'TensorBoard Event');
}

export function decodeEvent(bytes: Uint8Array): Event {
  return EventType.toObject(EventType.decode(bytes), TO_OBJECT) as Event;
}

export function encodeHParamsPluginData(data: HParamsPluginData): Uint8Array {
  return encode(HParamsPluginDataType, data, 'HParams plugin data');
}

export function decodeHParamsPluginData(bytes: Uint8Array): HParamsPluginData {
  return HParamsPluginDataType.toObject(HParamsPluginDataType.decode(bytes), TO_OBJECT) as HParamsPluginData;
}

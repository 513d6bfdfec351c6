// flow's TensorBoard event files against the protocol buffer definitions and against TensorBoard itself: files
// written by TensorBoard's own writer (test/fixtures/tensorboard/make_fixtures.py) decode to what it wrote and
// flow encodes the same records byte for byte; flow's file is the one TensorBoard's reader read back
// (flow-readback.json); the wire format carries TensorFlow's field numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readRecords } from '../../lib/tfrecord/reader.js';
import {
  decodeEvent,
  decodeHParamsPluginData,
  encodeEvent,
  FILE_VERSION,
  hparamsGroupName,
  imageValue,
  readEvents,
  scalarsByTag,
  scalarValue,
  sessionEndValue,
  sessionStartValue,
  type Event,
  type SummaryValue,
} from '../../lib/tensorboard/index.js';
import { fixturesDir, makeTempDir } from '../helpers/paths.js';
import { FLOW_FIXTURE, FLOW_HPARAMS, FLOW_SCALARS, writeFlowFixture } from './flow-fixture.js';

const dir = path.join(fixturesDir, 'tensorboard');

interface SpecEvent {
  kind: 'scalar' | 'simple_value' | 'image';
  tag: string;
  step: number;
  wall_time: number;
  value?: number;
  metadata?: boolean;
  width?: number;
  height?: number;
  png?: string;
}
interface Spec {
  hparams: Record<string, string | number | boolean>;
  hparams_start_time: number;
  hparams_end_time: number;
  hparams_group_name: string;
  events: SpecEvent[];
}

function readSpec(): Spec {
  const raw: unknown = JSON.parse(fs.readFileSync(path.join(dir, 'tensorboard-writer.json'), 'utf8'));
  assert.ok(typeof raw === 'object' && raw !== null && Array.isArray((raw as { events?: unknown }).events), 'tensorboard-writer.json holds events');
  return raw as Spec;
}

async function records(file: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const r of readRecords(file, { compression: 'none' })) out.push(Uint8Array.from(r.data));
  return out;
}

test("TensorBoard's own file decodes to what it wrote", async () => {
  const spec = readSpec();
  const events = await readEvents(path.join(dir, 'tensorboard-writer.tfevents'));
  assert.equal(events[0]!.file_version, FILE_VERSION);
  const scalars = scalarsByTag(events);
  for (const e of spec.events.filter((x) => x.kind !== 'image')) {
    const point = scalars.get(e.tag)!.find((p) => p.step === e.step)!;
    assert.deepEqual(point, { step: e.step, value: e.value, wallTime: e.wall_time }, e.tag);
  }
  const image = spec.events.find((x) => x.kind === 'image')!;
  const imageValueFound = events.flatMap((e) => e.summary?.value ?? []).find((v) => v.image)!;
  assert.equal(imageValueFound.tag, image.tag);
  assert.deepEqual([imageValueFound.image!.width, imageValueFound.image!.height, imageValueFound.image!.colorspace], [image.width, image.height, 3]);
  assert.deepEqual(Buffer.from(imageValueFound.image!.encoded_image_string!), Buffer.from(image.png!, 'base64'));
  const plugin = events.flatMap((e) => e.summary?.value ?? []).filter((v) => v.metadata?.plugin_data?.plugin_name === 'hparams');
  const start = decodeHParamsPluginData(plugin[0]!.metadata!.plugin_data!.content!);
  const values = Object.fromEntries(Object.entries(start.session_start_info!.hparams!).map(([k, v]) => [k, v.number_value ?? v.string_value ?? v.bool_value]));
  assert.deepEqual(values, spec.hparams);
  assert.equal(start.session_start_info!.start_time_secs, spec.hparams_start_time);
  assert.equal(start.session_start_info!.group_name, spec.hparams_group_name);
  assert.equal(hparamsGroupName(spec.hparams), spec.hparams_group_name, "flow names a session group as TensorBoard does");
  assert.deepEqual(decodeHParamsPluginData(plugin[1]!.metadata!.plugin_data!.content!).session_end_info, { status: 1, end_time_secs: spec.hparams_end_time });
});

test("flow encodes TensorBoard's records byte for byte", async () => {
  const spec = readSpec();
  const raw = await records(path.join(dir, 'tensorboard-writer.tfevents'));
  // Record 0 is the file version (its wall time is when the fixture was made); then hparams start and end.
  const ours: Event[] = [
    { wall_time: spec.hparams_start_time, step: 0, summary: { value: [sessionStartValue(spec.hparams, spec.hparams_start_time)] } },
    { wall_time: spec.hparams_end_time, step: 0, summary: { value: [sessionEndValue(spec.hparams_end_time)] } },
    ...spec.events.map((e): Event => {
      const value: SummaryValue =
        e.kind === 'scalar' ? scalarValue(e.tag, e.value!, e.metadata!) : e.kind === 'simple_value' ? { tag: e.tag, simple_value: e.value! } : imageValue(e.tag, Buffer.from(e.png!, 'base64'), e.width!, e.height!);
      return { wall_time: e.wall_time, step: e.step, summary: { value: [value] } };
    }),
  ];
  assert.equal(raw.length, ours.length + 1);
  ours.forEach((event, i) => {
    const theirs = raw[i + 1]!;
    const mine = encodeEvent(event);
    if (i === 0) {
      // A protobuf map has no defined order on the wire (Python's is its hash order): compare what it holds.
      const content = (bytes: Uint8Array): unknown => decodeHParamsPluginData(decodeEvent(bytes).summary!.value![0]!.metadata!.plugin_data!.content!);
      assert.deepEqual(content(mine), content(theirs));
      assert.equal(mine.length, theirs.length);
      return;
    }
    assert.deepEqual(Buffer.from(mine), Buffer.from(theirs), `record ${i + 1}: ${JSON.stringify(decodeEvent(theirs)).slice(0, 200)}`);
  });
});

test("flow's event file is the one TensorBoard's reader read back", async () => {
  const tmp = makeTempDir('flow-tb-');
  const file = await writeFlowFixture(tmp);
  assert.deepEqual(fs.readFileSync(file), fs.readFileSync(path.join(dir, FLOW_FIXTURE)), 'the writer still makes the bytes TensorBoard read (rerun the fixture script if the format changed on purpose)');
  const readback = JSON.parse(fs.readFileSync(path.join(dir, 'flow-readback.json'), 'utf8')) as {
    scalars: Record<string, [number, number][]>;
    images: Record<string, { step: number; width: number; height: number; decoded_size: number[]; pixels: number[][][] }[]>;
    hparams: { hparams: Record<string, unknown>; group_name: string };
    session_end: { status: string };
  };
  assert.deepEqual(readback.scalars, FLOW_SCALARS);
  assert.deepEqual(readback.hparams.hparams, FLOW_HPARAMS);
  assert.equal(readback.hparams.group_name, hparamsGroupName(FLOW_HPARAMS));
  assert.equal(readback.session_end.status, 'STATUS_SUCCESS');
  const [image] = readback.images['panels/0']!;
  assert.deepEqual([image!.step, image!.width, image!.height, image!.decoded_size], [3, 4, 2, [4, 2]]);
  assert.deepEqual(image!.pixels[0]![3], [255, 255, 255]);
  // And flow's own reader gets the logged scalars back.
  const scalars = scalarsByTag(await readEvents(file));
  for (const [tag, points] of Object.entries(FLOW_SCALARS)) assert.deepEqual(scalars.get(tag)!.map((p) => [p.step, p.value]), points);
});

/** Field number and wire type of every top-level field of a protobuf message. */
function wireFields(bytes: Uint8Array): { field: number; wire: number; body: Uint8Array | null }[] {
  const out: { field: number; wire: number; body: Uint8Array | null }[] = [];
  let at = 0;
  const varint = (): number => {
    let shift = 0;
    let v = 0;
    for (;;) {
      const b = bytes[at++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) (varint(), out.push({ field, wire, body: null }));
    else if (wire === 1) (at += 8, out.push({ field, wire, body: null }));
    else if (wire === 5) (at += 4, out.push({ field, wire, body: null }));
    else if (wire === 2) {
      const n = varint();
      out.push({ field, wire, body: bytes.subarray(at, at + n) });
      at += n;
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}

test("the wire format has TensorFlow's field numbers (event.proto, summary.proto, tensor.proto)", () => {
  const bytes = encodeEvent({ wall_time: 1.5, step: 7, summary: { value: [scalarValue('loss', 0.25, true)] } });
  const event = wireFields(bytes);
  assert.deepEqual(event.map((f) => [f.field, f.wire]), [[1, 1], [2, 0], [5, 2]], 'Event: wall_time double 1, step int64 2, summary 5');
  const summary = wireFields(event[2]!.body!);
  assert.deepEqual(summary.map((f) => [f.field, f.wire]), [[1, 2]], 'Summary: repeated Value value = 1');
  const value = wireFields(summary[0]!.body!);
  assert.deepEqual(value.map((f) => [f.field, f.wire]), [[1, 2], [8, 2], [9, 2]], 'Value: tag 1, tensor 8, metadata 9');
  const tensor = wireFields(value[1]!.body!);
  assert.deepEqual(tensor.map((f) => [f.field, f.wire]), [[1, 0], [2, 2], [5, 2]], 'TensorProto: dtype 1, tensor_shape 2, packed float_val 5');
  assert.equal(Buffer.from(tensor[2]!.body!).readFloatLE(0), 0.25);
  const metadata = wireFields(value[2]!.body!);
  assert.deepEqual(metadata.map((f) => [f.field, f.wire]), [[1, 2]]);
  assert.equal(Buffer.from(wireFields(metadata[0]!.body!)[0]!.body!).toString(), 'scalars', 'PluginData.plugin_name = 1');
  const image = wireFields(wireFields(wireFields(encodeEvent({ step: 1, summary: { value: [imageValue('p', new Uint8Array([1, 2]), 3, 2)] } }))[1]!.body!)[0]!.body!);
  assert.deepEqual(image.map((f) => [f.field, f.wire]), [[1, 2], [4, 2]], 'Value: tag 1, image 4');
  assert.deepEqual(wireFields(image[1]!.body!).map((f) => f.field), [1, 2, 3, 4], 'Image: height 1, width 2, colorspace 3, encoded_image_string 4');
});

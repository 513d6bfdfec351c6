// Reads TensorBoard event files back (tests, and anyone checking what a run logged): every Event, and the
// scalars by tag whichever way they were written (a float tensor, TF2; or simple_value, TF1).
import { readRecords } from '../tfrecord/reader.js';
import { decodeEvent, DT_FLOAT, type Event, type SummaryValue } from './proto.js';

export async function readEvents(file: string): Promise<Event[]> {
  const events: Event[] = [];
  for await (const record of readRecords(file, { compression: 'none' })) {
    try {
      events.push(decodeEvent(record.data));
    } catch (err) {
      throw new Error(`${file}: record ${record.index} at byte ${record.offset} is not a TensorBoard Event (${(err as Error).message})`);
    }
  }
  return events;
}

/** A value's scalar, or undefined when it holds none. */
export function scalarOf(value: SummaryValue): number | undefined {
  if (value.simple_value !== undefined) return value.simple_value;
  const t = value.tensor;
  if (!t || t.dtype !== DT_FLOAT || (t.tensor_shape?.dim?.length ?? 0) !== 0) return undefined;
  if (t.float_val?.length === 1) return t.float_val[0];
  if (t.tensor_content?.length === 4) return Buffer.from(t.tensor_content).readFloatLE(0);
  return undefined;
}

export interface ScalarPoint {
  step: number;
  value: number;
  wallTime: number;
}

/** Tag → its scalars in file order. */
export function scalarsByTag(events: readonly Event[]): Map<string, ScalarPoint[]> {
  const out = new Map<string, ScalarPoint[]>();
  for (const e of events) {
    for (const v of e.summary?.value ?? []) {
      const value = scalarOf(v);
      if (value === undefined || v.tag === undefined) continue;
      if (!out.has(v.tag)) out.set(v.tag, []);
      out.get(v.tag)!.push({ step: e.step ?? 0, value, wallTime: e.wall_time ?? 0 });
    }
  }
  return out;
}

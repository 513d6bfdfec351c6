// TensorBoard event files: `events.out.tfevents.<secs>.<host>.<pid>.<n>`, TFRecord-framed Event protos
// (lib/tfrecord's framing and writer), the first one naming the format version (`brain.Event:2`). The file
// carries a temporary name until close, so a crash never leaves a half-written file TensorBoard would read.
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { TFRecordFileWriter } from '../tfrecord/writer.js';
import { encodeEvent, type SummaryValue } from './proto.js';
import { imageValue, scalarValue, sessionEndValue, sessionStartValue, type HParamValue } from './summaries.js';

export const FILE_VERSION = 'brain.Event:2';

/** TensorBoard's event file name (its writer's pattern: ten-digit seconds, host, pid, a counter). */
export function eventFileName(wallTimeSecs: number, host = os.hostname(), pid = process.pid, counter = 0): string {
  return `events.out.tfevents.${String(Math.floor(wallTimeSecs)).padStart(10, '0')}.${host}.${pid}.${counter}`;
}

/** Writes one event file into `dir`: scalars, images and HParams records at given steps and wall times. */
export class SummaryWriter {
  private readonly tagsSeen = new Set<string>();

  private constructor(
    private readonly writer: TFRecordFileWriter,
    readonly file: string,
  ) {}

  /** Creates `dir` and the file; `wallTimeSecs` is the file's start (default now). */
  static async open(dir: string, options: { wallTimeSecs?: number; fileName?: string } = {}): Promise<SummaryWriter> {
    const wallTime = options.wallTimeSecs ?? Date.now() / 1000;
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, options.fileName ?? eventFileName(wallTime));
    const writer = new SummaryWriter(await TFRecordFileWriter.open(file), file);
    await writer.writer.write(encodeEvent({ wall_time: wallTime, file_version: FILE_VERSION }));
    return writer;
  }

  /** One Event holding `values` at `step`. */
  async values(step: number, wallTimeSecs: number, values: SummaryValue[]): Promise<void> {
    await this.writer.write(encodeEvent({ wall_time: wallTimeSecs, step, summary: { value: values } }));
  }

  /** Scalars at one step, one Event each (as TensorBoard's writers do); the plugin metadata on a tag's first. */
  async scalars(step: number, wallTimeSecs: number, scalars: Readonly<Record<string, number>>): Promise<void> {
    for (const [tag, value] of Object.entries(scalars)) {
      if (!Number.isFinite(value)) continue;
      const first = !this.tagsSeen.has(tag);
      this.tagsSeen.add(tag);
      await this.values(step, wallTimeSecs, [scalarValue(tag, value, first)]);
    }
  }

  async image(tag: string, step: number, wallTimeSecs: number, png: Uint8Array, width: number, height: number): Promise<void> {
    await this.values(step, wallTimeSecs, [imageValue(tag, png, width, height)]);
  }

  /** The HParams plugin's data: the session's hyper-parameters at its start, success at its end. */
  async hparams(hparams: Readonly<Record<string, HParamValue>>, startTimeSecs: number, endTimeSecs: number): Promise<void> {
    await this.values(0, startTimeSecs, [sessionStartValue(hparams, startTimeSecs)]);
    await this.values(0, endTimeSecs, [sessionEndValue(endTimeSecs)]);
  }

  async close(): Promise<string> {
    await this.writer.close();
    return this.file;
  }

  async abort(): Promise<void> {
    await this.writer.abort();
  }
}

// The event file flow's writer makes for the fixtures: fixed steps, wall times and values, so its bytes are
// reproducible. test/fixtures/tensorboard/make_fixtures.py reads the committed copy with TensorBoard's own
// reader (flow-readback.json records what TensorBoard found); the test checks today's writer still makes
// exactly those bytes. Run `node dist/test/tensorboard/flow-fixture.js` to rewrite the committed copy.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { SummaryWriter } from '../../lib/tensorboard/index.js';
import { fixturesDir } from '../helpers/paths.js';

export const FLOW_FIXTURE = 'flow-writer.tfevents';
export const START = 1_700_000_000;
export const FLOW_SCALARS: Record<string, [number, number][]> = {
  'step/loss': [[1, 0.75], [2, 0.5], [3, 0.25]],
  'epoch/val_dice': [[3, 0.875]],
};
export const FLOW_HPARAMS = { lr: 0.003, loss: 'bce_dice', batch_norm: true, epochs: 30 };

/** A 4x2 RGB PNG: red, green, blue, white on top; black below. */
export async function fixturePng(): Promise<Buffer> {
  const pixels = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  return sharp(pixels, { raw: { width: 4, height: 2, channels: 3 } }).png({ compressionLevel: 9 }).toBuffer();
}

export async function writeFlowFixture(dir: string): Promise<string> {
  const writer = await SummaryWriter.open(dir, { wallTimeSecs: START, fileName: FLOW_FIXTURE });
  await writer.hparams(FLOW_HPARAMS, START, START + 9);
  for (const [tag, points] of Object.entries(FLOW_SCALARS)) for (const [step, value] of points) await writer.scalars(step, START + step, { [tag]: value });
  await writer.image('panels/0', 3, START + 3, await fixturePng(), 4, 2);
  return writer.close();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = path.join(fixturesDir, 'tensorboard');
  fs.mkdirSync(out, { recursive: true });
  process.stdout.write(`wrote ${await writeFlowFixture(out)}\n`);
}

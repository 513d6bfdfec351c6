// The train stage's platform probe (StageKind.platform): its backend comes from the hparams input, not its params.
// Only the `backend` field is read here (the probe runs on every cache lookup: no schema compile); the stage
// validates the whole file when it runs.
import fs from 'node:fs';
import type { PlatformRequest } from '../../engine/stage.js';
import { tensorflowPlatform, type TensorflowPlatform } from '../../lib/tf/platform.js';

export function platformFacts(request: PlatformRequest): TensorflowPlatform {
  const file = request.inputs.hparams!;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: cannot read hparams.json (${(error as Error).message}); re-run the hparams stage`);
  }
  const backend = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as { backend?: unknown }).backend : undefined;
  if (typeof backend !== 'string') throw new Error(`${file}: hparams.json has no backend string; re-run the hparams stage`);
  return tensorflowPlatform(backend);
}

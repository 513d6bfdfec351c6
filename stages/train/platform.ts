// The train stage's platform probe (StageKind.platform): its backend comes from the hparams input, not its params.
import type { PlatformRequest } from '../../engine/stage.js';
import { readHparams } from '../../lib/train/hparams.js';
import { tensorflowPlatform, type TensorflowPlatform } from '../../lib/tf/platform.js';

export function platformFacts(request: PlatformRequest): TensorflowPlatform {
  return tensorflowPlatform(readHparams(request.inputs.hparams!).backend);
}

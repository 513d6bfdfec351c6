// The platform facts of a TensorFlow stage's cache key (engine/fingerprint.ts `platform`): which backend
// `initBackend` will pick and, on wasm, which convolution kernels flow puts in front of it. Predicted without
// loading TensorFlow.js (this runs on every cache lookup, also of fully cached runs), from what is installed,
// in initBackend's order of preference; `checkPlatform` then holds the stage to the prediction once the
// backend really started, so an entry is never committed under a key that names another platform.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { JsonObject, PlatformRequest } from '../../engine/stage.js';
import { AUTO_ORDER, type BackendInfo, type BackendName } from './backend.js';
import { nativeConvCapabilities } from './native-conv.js';

const require = createRequire(import.meta.url);

export interface TensorflowPlatform extends JsonObject {
  /** The backend that will run (`auto` resolved). */
  backend: string;
  /** wasm only: flow's native convolutions (flow-native-conv) replace the XNNPACK ones. */
  nativeConvolutions: boolean;
  /** wasm with native convolutions: the direct AVX2/FMA loops run for 8/16 channels (else im2col only). */
  nativeDirect: boolean;
}

/** True when `pkg` resolves from here and, for a native package, its compiled binding is on disk. */
function installed(pkg: string, bindingGlob?: { dir: string; file: string }): boolean {
  let root: string;
  try {
    root = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return false;
  }
  if (!bindingGlob) return true;
  // tfjs-node's install script downloads libtensorflow and builds lib/napi-v*/tfjs_binding.node; npm keeps the
  // package even when that fails, and the package then cannot start.
  const libDir = path.join(root, bindingGlob.dir);
  try {
    return fs.readdirSync(libDir).some((d) => fs.existsSync(path.join(libDir, d, bindingGlob.file)));
  } catch {
    return false;
  }
}

/** Whether a backend can start, as far as can be told without starting it. */
const AVAILABLE: Partial<Record<BackendName, () => boolean>> = {
  'tensorflow-gpu': () => installed('@tensorflow/tfjs-node-gpu', { dir: 'lib', file: 'tfjs_binding.node' }),
  tensorflow: () => installed('@tensorflow/tfjs-node', { dir: 'lib', file: 'tfjs_binding.node' }),
  wasm: () => installed('@tensorflow/tfjs-backend-wasm'),
  cpu: () => installed('@tensorflow/tfjs-backend-cpu'),
};

let native: { loads: boolean; direct: boolean } | undefined;

/** The facts for a backend preference (`auto` or a name), predicted as described above. */
export function tensorflowPlatform(preference: string): TensorflowPlatform {
  let backend = preference;
  if (preference === 'auto') {
    // initBackend's order for auto. A backend without a probe here counts as unavailable (a new backend must add
    // one when it joins AUTO_ORDER); if it does start, checkPlatform says so instead of a wrong key being written.
    backend = AUTO_ORDER.find((name) => AVAILABLE[name]?.() ?? false) ?? 'cpu';
  }
  const wasm = backend === 'wasm';
  // The addon decides (loads? direct loops on this CPU?); its answer is asked once per process.
  native ??= nativeConvCapabilities();
  return { backend, nativeConvolutions: wasm && native.loads, nativeDirect: wasm && native.direct };
}

/** The platform probe of stages whose params name the backend (`backend: auto | <name>`). */
export function platformFacts(request: PlatformRequest): TensorflowPlatform {
  const backend = request.params.backend;
  return tensorflowPlatform(typeof backend === 'string' ? backend : 'auto');
}

/**
 * Fails when the backend that started is not the one the cache key names (e.g. tfjs-node-gpu installed but
 * CUDA missing, so initBackend fell back to wasm): the stage's outputs would be stored under the wrong key.
 */
export function checkPlatform(expected: JsonObject, actual: BackendInfo): void {
  if (typeof expected.backend !== 'string') return; // no platform facts in the key (a stage test)
  const nativeNow = actual.name === 'wasm' && actual.kernels.startsWith('convolutions native');
  const problems: string[] = [];
  if (expected.backend !== actual.name) problems.push(`backend ${expected.backend} was expected but ${actual.name} started (${actual.reason})`);
  else if (expected.nativeConvolutions !== nativeNow) problems.push(`native convolutions were ${expected.nativeConvolutions ? '' : 'not '}expected but ${actual.kernels}`);
  if (problems.length > 0) {
    throw new Error(`${problems.join('; ')}: the cache key would name another platform; set backend: ${actual.name} (--set backend=${actual.name}) or fix the installation`);
  }
}

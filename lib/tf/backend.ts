// Picks the TensorFlow.js backend once per process and hands out the one tfjs-core instance that tfjs-layers
// and every backend share. All TensorFlow packages are imported dynamically, so importing this module is cheap
// (the engine's loader and `flow validate` never pay for TensorFlow).
import { createRequire } from 'node:module';
import path from 'node:path';
import os from 'node:os';
import { adapterSummary, importWebGpuBackend, probeWebGpu, type WebGpuAdapterFacts } from './webgpu.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type TfLayers = typeof import('@tensorflow/tfjs-layers');

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendInfo {
  name: BackendName;
  /** The npm package that provides it. */
  package: string;
  version: string;
  /** Compute threads the backend uses. */
  threads: number;
  /** Why this one: what was tried before it and why that failed, or that it was forced. */
  reason: string;
  /** Which convolution kernels run: the backend's own, or flow's replacements on wasm (native or XNNPACK). */
  kernels: string;
  /** On webgpu: the GPU adapter (vendor, architecture, limits) Dawn found. */
  adapter?: WebGpuAdapterFacts;
}

/** The facts every TensorFlow stage records in env.json (one spelling, so stages merge consistently). */
export function backendFacts(info: BackendInfo): {
  backend: string;
  backendPackage: string;
  backendVersion: string;
  backendThreads: number;
  backendReason: string;
  backendKernels: string;
  backendAdapter?: WebGpuAdapterFacts;
} {
  return {
    backend: info.name,
    backendPackage: info.package,
    backendVersion: info.version,
    backendThreads: info.threads,
    backendReason: info.reason,
    backendKernels: info.kernels,
    ...(info.adapter ? { backendAdapter: info.adapter } : {}),
  };
}

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/**
 * The order `auto` tries backends in: the native TensorFlow builds, then the CPU ones. webgpu belongs between them
 * (a GPU through WebGPU), but it joins `auto` only once its kernels and training have been checked on a real GPU
 * (bench/gpu.sh: issue 14 is blocked on a GPU machine); until then it runs only when named (`backend: webgpu`).
 */
export const AUTO_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
const NOT_IN_AUTO: Partial<Record<BackendName, string>> = {
  webgpu: 'webgpu is not tried by auto until it has been verified on a GPU (bench/gpu.sh); set backend: webgpu to use it',
};

const PACKAGE_OF: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  webgpu: '@tensorflow/tfjs-backend-webgpu',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

/** The name tfjs-core registers each backend under (both native packages register `tensorflow`). */
const TFJS_NAME_OF: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  webgpu: 'webgpu',
  wasm: 'wasm',
  cpu: 'cpu',
};

const INSTALL_HINT: Record<BackendName, string> = {
  'tensorflow-gpu':
    'install it with `npm install @tensorflow/tfjs-node-gpu@4.22.0` (needs CUDA 11.2 + cuDNN 8.1 on Linux x64)',
  tensorflow: 'install it with `npm install @tensorflow/tfjs-node@4.22.0` (prebuilt for Linux/macOS/Windows x64)',
  webgpu:
    'install the optional packages (`npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0`; npm ci does it) ' +
    'and make sure a Vulkan driver and loader (libvulkan.so.1) are present for the GPU',
  wasm: 'reinstall dependencies (`npm ci`): @tensorflow/tfjs-backend-wasm is a regular dependency of flow',
  cpu: 'reinstall dependencies (`npm ci`): @tensorflow/tfjs-backend-cpu is a regular dependency of flow',
};

const require = createRequire(import.meta.url);

let tfInstance: Tf | null = null;
let layersInstance: TfLayers | null = null;
let current: BackendInfo | null = null;
/** Set when wasm activates: which convolution kernels flow registered on it. */
let wasmKernels = '';
/** Set when webgpu activates: the adapter Dawn found. */
let webGpuAdapter: WebGpuAdapterFacts | null = null;
/** Serialises concurrent initBackend calls so two callers never race tf.setBackend. */
let pending: Promise<BackendInfo> = Promise.resolve(null as unknown as BackendInfo);

function packageVersion(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}

async function loadCore(): Promise<Tf> {
  if (tfInstance === null) {
    const tf = (await import('@tensorflow/tfjs-core')) as Tf;
    // tfjs-layers registers its serialisable classes on the tfjs-core it resolves; both resolve to the same
    // hoisted node_modules copy (all 4.22.0), which this assertion keeps true.
    layersInstance = (await import('@tensorflow/tfjs-layers')) as TfLayers;
    tfInstance = tf;
  }
  return tfInstance;
}

/**
 * Tries to make one backend active; throws with a one-line reason when it cannot. `forced`: the user named it,
 * so a software WebGPU adapter is taken (with auto it is passed over: flow's wasm kernels are faster).
 */
async function activate(tf: Tf, name: BackendName, forced: boolean): Promise<number> {
  const tfjsName = TFJS_NAME_OF[name];
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      await import(PACKAGE_OF[name]);
      if (tf.findBackend(tfjsName) === null) {
        throw new Error(
          `${PACKAGE_OF[name]} loaded but registered no "${tfjsName}" backend on flow's tfjs-core ` +
            `(${packageVersion('@tensorflow/tfjs-core')}): its tfjs-core version must match`,
        );
      }
      break;
    }
    case 'webgpu': {
      const adapter = await probeWebGpu();
      if (adapter.software && !forced) {
        throw new Error(`the only WebGPU adapter is a software one, ${adapterSummary(adapter)}: slower than wasm with flow's kernels`);
      }
      await importWebGpuBackend();
      if (tf.findBackendFactory(tfjsName) === null) {
        throw new Error(`${PACKAGE_OF[name]} loaded but registered no "webgpu" backend (navigator.gpu was not set before it loaded)`);
      }
      webGpuAdapter = adapter;
      break;
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // In Node the .wasm binaries are read from disk: point the loader at the package's own dist folder.
      const distDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(distDir + path.sep);
      break;
    }
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      break;
  }
  const ok = await tf.setBackend(tfjsName);
  if (!ok || tf.getBackend() !== tfjsName) throw new Error(`tf.setBackend('${tfjsName}') failed`);
  await tf.ready();
  const { registerConv3dTransposeGradient } = await import('./gradients-3d.js');
  registerConv3dTransposeGradient(tf);
  if (name === 'wasm') {
    const { registerWasmGradientKernels } = await import('./wasm-kernels.js');
    registerWasmGradientKernels(tf);
    const { registerWasm3dKernels } = await import('./wasm-kernels-3d.js');
    registerWasm3dKernels(tf);
    // Last: the native kernels replace the 2D ones above and keep them as their fallback.
    const { registerNativeConvKernels } = await import('./native-conv.js');
    const native = registerNativeConvKernels(tf);
    wasmKernels = native.active
      ? `convolutions native: im2col + ${native.detail} (flow-native-conv)`
      : `convolutions on wasm's XNNPACK, gradients composed by flow (${native.detail}); 3D as depth-stacked 2D`;
    // tfjs turns wasm threads off in Node; XNNPACK then runs on the calling thread only.
    return tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? os.availableParallelism() : 1;
  }
  if (name === 'webgpu') {
    // One host thread feeds the GPU: data-parallel worker threads would each open their own device.
    return 1;
  }
  if (name === 'cpu') {
    // tfjs-backend-cpu prints an "install tfjs-node" banner on first use; flow reports its choice itself.
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
    return 1;
  }
  return os.availableParallelism();
}

function describeActive(name: BackendName, threads: number, reason: string): BackendInfo {
  const info: BackendInfo = {
    name,
    package: PACKAGE_OF[name],
    version: packageVersion(PACKAGE_OF[name]),
    threads,
    reason,
    kernels: name === 'wasm' ? wasmKernels : "the backend's own",
  };
  if (name === 'webgpu' && webGpuAdapter !== null) {
    info.adapter = webGpuAdapter;
    info.reason = `${reason}; adapter ${adapterSummary(webGpuAdapter)}`;
  }
  return info;
}

async function init(preference: BackendPreference): Promise<BackendInfo> {
  if (!(preference === 'auto' || BACKEND_NAMES.includes(preference))) {
    throw new Error(`unknown backend "${String(preference)}": use one of auto, ${BACKEND_NAMES.join(', ')}`);
  }
  if (current !== null && (preference === 'auto' || preference === current.name)) return current;
  const tf = await loadCore();
  if (preference !== 'auto') {
    try {
      const threads = await activate(tf, preference, true);
      current = describeActive(preference, threads, `forced by backend: ${preference}`);
      return current;
    } catch (error) {
      throw new Error(
        `backend "${preference}" is not available: ${firstLine(error)}. To use it, ${INSTALL_HINT[preference]}; ` +
          `or set backend: auto to take the best one installed`,
      );
    }
  }
  const skipped: string[] = [];
  for (const name of BACKEND_NAMES) {
    if (!AUTO_ORDER.includes(name)) {
      skipped.push(NOT_IN_AUTO[name] ?? `${name} is not tried by auto`);
      continue;
    }
    try {
      const threads = await activate(tf, name, false);
      const why = skipped.length > 0 ? skipped.join('; ') : 'first choice';
      const warning = name === 'cpu' ? ' (pure-JS cpu backend: far too slow to train real models)' : '';
      current = describeActive(name, threads, `${why}${warning}`);
      if (name === 'cpu') process.emitWarning(`flow: falling back to the pure-JS cpu backend: ${why}`);
      return current;
    } catch (error) {
      skipped.push(`${PACKAGE_OF[name]} unavailable: ${firstLine(error)}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.join('; ')}`);
}

/**
 * Picks and activates a backend. Idempotent: `auto` or the active name returns the active backend; naming
 * another backend switches to it (tests compare wasm with cpu this way). A forced name that cannot start is an
 * error that says how to install it.
 */
export function initBackend(preference: BackendPreference = 'auto'): Promise<BackendInfo> {
  const next = pending.catch(() => undefined).then(() => init(preference));
  pending = next;
  return next;
}

/** The shared tfjs-core namespace; call `initBackend` first. */
export function getTf(): Tf {
  if (tfInstance === null) throw new Error('TensorFlow.js is not initialised: await initBackend() first');
  return tfInstance;
}

/** The tfjs-layers namespace (built on the same tfjs-core); call `initBackend` first. */
export function getLayers(): TfLayers {
  if (layersInstance === null) throw new Error('TensorFlow.js is not initialised: await initBackend() first');
  return layersInstance;
}

/** The active backend, or null before `initBackend`. */
export function currentBackend(): BackendInfo | null {
  return current;
}

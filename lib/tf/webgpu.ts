// WebGPU for TensorFlow.js in Node through Dawn's Node binding (the optional `webgpu` package, which ships a
// prebuilt dawn.node; Dawn reaches the GPU through Vulkan on Linux). Node 20 has no `navigator` and no WebGPU
// globals, and @tensorflow/tfjs-backend-webgpu registers its backend only if `navigator.gpu` exists when it is
// imported, so the binding's globals are installed first. The adapter is vetted here, before tfjs sees it: a
// software adapter (SwiftShader, lavapipe/llvmpipe) trains slower than flow's wasm kernels, so `auto` passes it
// over and says why.
//
// Both packages are optional and loaded by name at run time, so flow builds and runs where they are absent.
import fs from 'node:fs';
import path from 'node:path';

/** What env.json records about the GPU the webgpu backend runs on (a type alias: it is stored as JSON). */
export type WebGpuAdapterFacts = {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's software fallback (SwiftShader) or another CPU implementation of Vulkan. */
  software: boolean;
  /** The limits that bound the tensors a kernel can take (bytes, workgroup sizes). */
  limits: Record<string, number>;
  features: string[];
};

// The few members of the WebGPU API this module touches, typed here so that flow compiles without the optional
// package's type declarations.
interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapterLike {
  info?: GpuAdapterInfoLike;
  isFallbackAdapter?: boolean;
  limits: object;
  features: Iterable<string>;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null>;
}
interface DawnModule {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** The limits worth recording (GPUSupportedLimits' members live on its prototype, so they are named here). */
const RECORDED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|software/i;

let gpu: GpuLike | null = null;
let probed: Promise<WebGpuAdapterFacts> | null = null;

/**
 * Dawn's options: `FLOW_WEBGPU_DAWN` adds comma-separated ones (e.g. `backend=vulkan` or
 * `enable-dawn-features=dump_shaders`), for a machine where Dawn's default choice is wrong.
 */
function dawnOptions(): string[] {
  const extra = process.env.FLOW_WEBGPU_DAWN;
  return extra ? extra.split(',').map((option) => option.trim()).filter((option) => option !== '') : [];
}

/**
 * Where no Vulkan loader is installed Dawn can find no GPU on Linux, and it says so on stderr in every process
 * that tries: look for libvulkan.so.1 first, in the dynamic linker's usual folders and LD_LIBRARY_PATH.
 * `FLOW_WEBGPU_DAWN` skips the look (Dawn may be told to use another backend).
 */
function vulkanLoaderMissing(): boolean {
  if (process.platform !== 'linux' || process.env.FLOW_WEBGPU_DAWN) return false;
  const folders = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter((folder) => folder !== ''),
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    `/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/usr/lib64',
    '/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return !folders.some((folder) => fs.existsSync(path.join(folder, 'libvulkan.so.1')));
}

/** Loads Dawn and installs `navigator.gpu` and the WebGPU globals (GPUBufferUsage, …) on globalThis. */
async function installDawn(): Promise<GpuLike> {
  if (gpu !== null) return gpu;
  const name = 'webgpu'; // by name, so TypeScript does not need the optional package
  let dawn: DawnModule;
  try {
    dawn = (await import(name)) as DawnModule;
  } catch (error) {
    throw new Error(`the webgpu package (Dawn) is not installed or cannot load: ${firstLine(error)}`, { cause: error });
  }
  Object.assign(globalThis, dawn.globals);
  const created = dawn.create(dawnOptions());
  const scope = globalThis as { navigator?: { gpu?: unknown } };
  if (scope.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: created }, configurable: true, writable: true });
  } else if (scope.navigator.gpu === undefined) {
    Object.defineProperty(scope.navigator, 'gpu', { value: created, configurable: true, writable: true });
  }
  gpu = created;
  return created;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}

function describe(adapter: GpuAdapterLike): WebGpuAdapterFacts {
  const info = adapter.info ?? {};
  const limitsSource = adapter.limits as Record<string, unknown>;
  const limits: Record<string, number> = {};
  for (const name of RECORDED_LIMITS) {
    const value = limitsSource[name];
    if (typeof value === 'number') limits[name] = value;
  }
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(text),
    limits,
    features: [...adapter.features].sort(),
  };
}

/**
 * Finds the GPU adapter tfjs-backend-webgpu will use (high-performance preference, as tfjs asks for) and
 * describes it. Throws, with the reason in one line, when Dawn is missing or finds no adapter. Probed once
 * per process.
 */
export function probeWebGpu(): Promise<WebGpuAdapterFacts> {
  probed ??= (async () => {
    if (vulkanLoaderMissing()) {
      throw new Error('no Vulkan loader (libvulkan.so.1) is installed, so Dawn can reach no GPU (Debian/Ubuntu: apt-get install libvulkan1)');
    }
    const found = await installDawn();
    const adapter = await found.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) {
      throw new Error(
        'Dawn found no WebGPU adapter (it needs a Vulkan driver for the GPU and the Vulkan loader libvulkan.so.1; ' +
          'set FLOW_WEBGPU_DAWN=backend=vulkan and VK_DRIVER_FILES to point at the ICD if they are installed elsewhere)',
      );
    }
    return describe(adapter);
  })();
  return probed;
}

/** One line for env.json and the status line: "nvidia hopper (NVIDIA H200), Vulkan". */
export function adapterSummary(facts: WebGpuAdapterFacts): string {
  const name = facts.description || facts.device;
  const parts = [facts.vendor, facts.architecture].filter((part) => part !== '').join(' ');
  return `${parts || 'unknown adapter'}${name ? ` (${name})` : ''}${facts.software ? ', software' : ''}`;
}

/** Installs Dawn's globals, then imports tfjs-backend-webgpu, which registers the `webgpu` backend. */
export async function importWebGpuBackend(): Promise<void> {
  await installDawn();
  const name = '@tensorflow/tfjs-backend-webgpu';
  await import(name);
}

// Native 2D convolutions for the wasm backend: the optional `flow-native-conv` addon (native/conv: im2col +
// OpenBLAS sgemm) replaces wasm's Conv2D, FusedConv2D and flow's XNNPACK-composed gradient kernels when it was
// built at install time. Why: XNNPACK in wasm runs 128-bit SIMD without FMA, and the filter gradient, whose
// "filter" is the whole upstream gradient, reaches a third of the forward convolution's rate there; OpenBLAS's
// AVX2/AVX-512 GEMM does several times the work per second on the same core. The addon reads and writes the
// wasm heap in place through Float32Array views, so nothing is copied. Without the addon (no C++ toolchain or
// no libopenblas-dev when `npm ci` ran) flow keeps the wasm kernels; FLOW_NATIVE_CONV=0 turns it off.
import { createRequire } from 'node:module';
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmHeapBackend } from './wasm-kernels.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** The addon's functions (native/conv/src/conv.cc). Geometry: n h w ci kh kw co sh sw padTop padLeft oh ow [activation]. */
interface NativeConvAddon {
  forward(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, geometry: Int32Array): void;
  backpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  backpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  blas(): string;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

interface FusedConvAttrs extends ConvAttrs {
  activation: string;
}

/** What initBackend records: whether native convolutions are in use, and why (not). */
export interface NativeConvStatus {
  active: boolean;
  /** e.g. "OpenBLAS 0.3.21 … (core Haswell)", or why the addon is not used. */
  detail: string;
}

const BACKEND = 'wasm';
/** The addon's activation codes; other activations go to the kernel this one replaced. */
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, sigmoid: 2 };
const require = createRequire(import.meta.url);

let status: NativeConvStatus | null = null;

function loadAddon(): NativeConvAddon | string {
  if (process.env.FLOW_NATIVE_CONV === '0') return 'turned off by FLOW_NATIVE_CONV=0';
  try {
    return require('flow-native-conv') as NativeConvAddon;
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    return `flow-native-conv is not built (${message}); install a C++ toolchain and libopenblas-dev, then npm ci`;
  }
}

function single(value: number | [number, number] | undefined): boolean {
  return value === undefined || value === 1 || (Array.isArray(value) && value[0] === 1 && value[1] === 1);
}

/** The addon's geometry for a convolution of x [inputShape] with a filter [filterShape]; null if unsupported. */
function geometryOf(tf: Tf, inputShape: Shape4, filterShape: Shape4, attrs: ConvAttrs, activation = 0): Int32Array | null {
  if (attrs.dataFormat === 'NCHW' || !single(attrs.dilations)) return null;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const { top, left } = info.padInfo;
  if (top < 0 || left < 0) return null;
  return Int32Array.from([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.strideHeight,
    info.strideWidth,
    top,
    left,
    info.outHeight,
    info.outWidth,
    activation,
  ]);
}

function heap(backend: KernelBackend, info: TensorInfo): Float32Array {
  return (backend as unknown as WasmHeapBackend).typedArrayFromHeap(info) as Float32Array;
}

function makeOutput(backend: KernelBackend, shape: number[]): TensorInfo {
  return (backend as unknown as WasmHeapBackend).makeOutput(shape, 'float32');
}

/**
 * Registers the native kernels on the wasm backend (after flow's wasm kernels, which stay as the fallback for
 * what the addon does not cover: NCHW, dilation, other fused activations). Returns what was done, also kept for
 * `nativeConvStatus`. Idempotent.
 */
export function registerNativeConvKernels(tf: Tf): NativeConvStatus {
  if (status !== null) return status;
  const addon = loadAddon();
  if (typeof addon === 'string') {
    status = { active: false, detail: addon };
    return status;
  }
  const replace = (kernelName: string, make: (previous: KernelFunc) => KernelFunc): void => {
    const previous = tf.getKernel(kernelName, BACKEND);
    if (previous === undefined) throw new Error(`wasm backend has no ${kernelName} kernel to replace`);
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: make(previous.kernelFunc) });
  };

  const convolve = (previous: KernelFunc, fused: boolean): KernelFunc => (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as unknown as FusedConvAttrs;
    const activation = fused ? ACTIVATIONS[attrs.activation] : 0;
    const geometry =
      activation === undefined || preluActivationWeights != null || x!.dtype !== 'float32'
        ? null
        : geometryOf(tf, x!.shape as Shape4, filter!.shape as Shape4, attrs, activation);
    if (geometry === null) return previous(args);
    const backend = args.backend as KernelBackend;
    const out = makeOutput(backend, [geometry[0]!, geometry[11]!, geometry[12]!, geometry[6]!]);
    // Views after makeOutput: allocating may grow (and move) the wasm heap.
    const biasView = fused && bias != null ? heap(backend, bias) : null;
    if (biasView !== null && biasView.length !== geometry[6]) return previous(args); // a broadcast shape the addon does not take
    addon.forward(heap(backend, x!), heap(backend, filter!), biasView, heap(backend, out), geometry);
    return out;
  };
  replace('Conv2D', (previous) => convolve(previous, false));
  replace('FusedConv2D', (previous) => convolve(previous, true));

  replace('Conv2DBackpropInput', (previous) => (args) => {
    const { dy, filter } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as unknown as ConvAttrs & { inputShape: Shape4 };
    const geometry = geometryOf(tf, attrs.inputShape, filter!.shape as Shape4, attrs);
    if (geometry === null) return previous(args);
    const backend = args.backend as KernelBackend;
    const dx = makeOutput(backend, [...attrs.inputShape]);
    addon.backpropInput(heap(backend, dy!), heap(backend, filter!), heap(backend, dx), geometry.subarray(0, 13));
    return dx;
  });

  replace('Conv2DBackpropFilter', (previous) => (args) => {
    const { x, dy } = args.inputs as Record<string, TensorInfo>;
    const attrs = args.attrs as unknown as ConvAttrs & { filterShape: Shape4 };
    const geometry = geometryOf(tf, x!.shape as Shape4, attrs.filterShape, attrs);
    if (geometry === null) return previous(args);
    const backend = args.backend as KernelBackend;
    const dw = makeOutput(backend, [...attrs.filterShape]);
    addon.backpropFilter(heap(backend, x!), heap(backend, dy!), heap(backend, dw), geometry.subarray(0, 13));
    return dw;
  });
  status = { active: true, detail: addon.blas() };
  return status;
}

/** Whether native convolutions are registered in this process (null before initBackend('wasm')). */
export function nativeConvStatus(): NativeConvStatus | null {
  return status;
}

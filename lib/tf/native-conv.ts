// Native 2D and 3D convolutions for the wasm backend: the optional `flow-native-conv` addon (native/conv:
// im2col + flow's own packed GEMM, and direct loops for 8/16 channels) replaces wasm's Conv2D, FusedConv2D,
// Conv3D and flow's XNNPACK-composed gradient kernels (lib/tf/wasm-kernels.ts, wasm-kernels-3d.ts) when `npm ci`
// built it. Why: XNNPACK in wasm runs 128-bit SIMD without FMA, and the filter gradient, whose "filter" is the
// whole upstream gradient, reaches a third of the forward convolution's rate there; an AVX2/FMA micro-kernel
// does several times the work per second on the same core. The addon needs no BLAS library (only a C++
// compiler at install time), and reads and writes the wasm heap in place through Float32Array views, so
// nothing is copied. Without it (no C++ toolchain, a platform node-gyp cannot build for) flow keeps the wasm
// kernels, and env.json says why; on CPUs without AVX2+FMA the addon runs a portable micro-kernel and says so.
// FLOW_NATIVE_CONV=0 turns it off.
// The addon's source and build settings are part of every stage digest that reaches this module:
// flow:digest-also native/conv/src/conv.cc
// flow:digest-also native/conv/src/gemm.cc
// flow:digest-also native/conv/src/gemm.h
// flow:digest-also native/conv/binding.gyp
import { createRequire } from 'node:module';
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmHeapBackend } from './wasm-kernels.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type Shape4 = [number, number, number, number];
type Shape5 = [number, number, number, number, number];
type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/**
 * The addon's functions (native/conv/src/conv.cc). Geometry (GEOMETRY_VALUES Int32s, then the activation for
 * forward): n d h w ci kd kh kw co sd sh sw padFront padTop padLeft od oh ow; 2D is d = kd = sd = od = 1.
 */
interface NativeConvAddon {
  forward(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, geometry: Int32Array): void;
  backpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  backpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  /** Which GEMM micro-kernel and direct kernels this CPU runs (for env.json). */
  kernels(): string;
  copyBlocks(
    source: Float32Array | Int32Array | Uint8Array,
    sourceOffset: number,
    sourceStride: number,
    target: Float32Array | Int32Array | Uint8Array,
    targetOffset: number,
    targetStride: number,
    run: number,
    rows: number,
  ): void;
  columnSums(x: Float32Array, inner: number, out: Float32Array): void;
  /** Geometry: n h w c kh kw sh sw padTop padLeft oh ow. */
  maxPoolGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  /** Seconds per phase (im2col, gemm, col2im, pad, direct, bias+activation) on this thread since the last call. */
  timers(): Record<string, number>;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

interface Conv3dAttrs {
  strides: number | [number, number, number];
  pad: 'same' | 'valid';
  dataFormat?: 'NDHWC' | 'NCDHW';
  dilations?: number | [number, number, number];
}

interface FusedConvAttrs extends ConvAttrs {
  activation: string;
}

/** What initBackend records: whether native convolutions are in use, and why (not). */
export interface NativeConvStatus {
  active: boolean;
  /** e.g. "flow GEMM, AVX2+FMA 6x16 micro-kernel; direct AVX2 kernels for 8/16 channels", or why the addon is not used. */
  detail: string;
}

const BACKEND = 'wasm';
const GEOMETRY_VALUES = 18;
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
    return `flow-native-conv is not built (${message}); install a C++ toolchain (g++, make, python3), then npm ci`;
  }
}

/** The addon's own text marks its direct loops as in use (conv.cc decides: AVX2+FMA and no FLOW_NATIVE_DIRECT). */
const DIRECT_KERNELS_ON = '; direct AVX2 kernels';

/**
 * Whether flow-native-conv loads here and runs its direct loops, as the kernels registered below would use them.
 * Cheap (no TensorFlow.js): the cache key's platform facts (lib/tf/platform.ts) ask it on every lookup.
 */
export function nativeConvCapabilities(): { loads: boolean; direct: boolean } {
  const loaded = loadAddon();
  return typeof loaded === 'string' ? { loads: false, direct: false } : { loads: true, direct: loaded.kernels().includes(DIRECT_KERNELS_ON) };
}

function single(value: number | number[] | undefined): boolean {
  return value === undefined || value === 1 || (Array.isArray(value) && value.every((v) => v === 1));
}

/** The addon's geometry for a 2D convolution of x [inputShape] with a filter [filterShape]; null if unsupported. */
function geometry2d(tf: Tf, inputShape: Shape4, filterShape: Shape4, attrs: ConvAttrs, activation = 0): Int32Array | null {
  if (attrs.dataFormat === 'NCHW' || !single(attrs.dilations)) return null;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const { top, left } = info.padInfo;
  if (top < 0 || left < 0) return null;
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, filterHeight: kh, filterWidth: kw, outChannels: co } = info;
  return Int32Array.from([n, 1, h, w, ci, 1, kh, kw, co, 1, info.strideHeight, info.strideWidth, 0, top, left, 1, info.outHeight, info.outWidth, activation]);
}

/** The same for a 3D convolution (NDHWC); null where tfjs's padding is negative (a kernel smaller than its stride). */
function geometry3d(tf: Tf, inputShape: Shape5, filterShape: Shape5, attrs: Conv3dAttrs): Int32Array | null {
  if (attrs.dataFormat === 'NCDHW' || !single(attrs.dilations)) return null;
  const info = tf.backend_util.computeConv3DInfo(inputShape, filterShape, attrs.strides, 1, attrs.pad, false, 'channelsLast');
  const { front, top, left } = info.padInfo;
  if (front < 0 || top < 0 || left < 0) return null;
  return Int32Array.from([
    info.batchSize,
    info.inDepth,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterDepth,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.strideDepth,
    info.strideHeight,
    info.strideWidth,
    front,
    top,
    left,
    info.outDepth,
    info.outHeight,
    info.outWidth,
    0,
  ]);
}

/** The geometry of a 2D (rank 4) or 3D (rank 5) convolution of x [inputShape] with a filter [filterShape]. */
function geometryOf(tf: Tf, inputShape: number[], filterShape: number[], attrs: unknown, activation = 0): Int32Array | null {
  return inputShape.length === 5
    ? geometry3d(tf, inputShape as Shape5, filterShape as Shape5, attrs as Conv3dAttrs)
    : geometry2d(tf, inputShape as Shape4, filterShape as Shape4, attrs as ConvAttrs, activation);
}

/** [n, (od,) oh, ow, co] of a forward convolution from its geometry. */
function outputShape(geometry: Int32Array, rank: number): number[] {
  const [n, , , , , , , , co, , , , , , , od, oh, ow] = geometry;
  return rank === 5 ? [n!, od!, oh!, ow!, co!] : [n!, oh!, ow!, co!];
}

function heap(backend: KernelBackend, info: TensorInfo): Float32Array {
  return (backend as unknown as WasmHeapBackend).typedArrayFromHeap(info) as Float32Array;
}

function makeOutput(backend: KernelBackend, shape: number[]): TensorInfo {
  return (backend as unknown as WasmHeapBackend).makeOutput(shape, 'float32');
}

type KernelArgs = Parameters<KernelFunc>[0];
export type NativeConvolution = 'conv2d' | 'fused2d' | 'conv3d' | 'inputGradient' | 'filterGradient';



let addon: NativeConvAddon | null = null;
let tfRef: Tf | null = null;

/** A forward convolution on the addon, or null where it does not apply (then the caller's kernel runs). */
function forward(tf: Tf, native: NativeConvAddon, args: KernelArgs, kind: 'conv2d' | 'fused2d' | 'conv3d'): TensorInfo | null {
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
  const fused = kind === 'fused2d';
  const activation = fused ? ACTIVATIONS[(args.attrs as unknown as FusedConvAttrs).activation] : 0;
  if (activation === undefined || preluActivationWeights != null || x!.dtype !== 'float32') return null;
  const geometry = geometryOf(tf, x!.shape, filter!.shape, args.attrs, activation);
  if (geometry === null) return null;
  const backend = args.backend as KernelBackend;
  if (fused && bias != null && bias.shape.reduce((a, b) => a * b, 1) !== geometry[8]) return null; // a broadcast the addon does not take
  const out = makeOutput(backend, outputShape(geometry, x!.shape.length));
  // Views after makeOutput: allocating may grow (and move) the wasm heap.
  const biasView = fused && bias != null ? heap(backend, bias) : null;
  native.forward(heap(backend, x!), heap(backend, filter!), biasView, heap(backend, out), geometry);
  return out;
}

/** The input gradient (inputs dy, filter; attrs.inputShape) on the addon, or null where it does not apply. */
function inputGradient(tf: Tf, native: NativeConvAddon, args: KernelArgs): TensorInfo | null {
  const { dy, filter } = args.inputs as Record<string, TensorInfo>;
  const inputShape = (args.attrs as unknown as { inputShape: number[] }).inputShape;
  const geometry = geometryOf(tf, inputShape, filter!.shape, args.attrs);
  if (geometry === null) return null;
  const backend = args.backend as KernelBackend;
  const dx = makeOutput(backend, [...inputShape]);
  native.backpropInput(heap(backend, dy!), heap(backend, filter!), heap(backend, dx), geometry.subarray(0, GEOMETRY_VALUES));
  return dx;
}

/** The filter gradient (inputs x, dy; attrs.filterShape) on the addon, or null where it does not apply. */
function filterGradient(tf: Tf, native: NativeConvAddon, args: KernelArgs): TensorInfo | null {
  const { x, dy } = args.inputs as Record<string, TensorInfo>;
  const filterShape = (args.attrs as unknown as { filterShape: number[] }).filterShape;
  const geometry = geometryOf(tf, x!.shape, filterShape, args.attrs);
  if (geometry === null) return null;
  const backend = args.backend as KernelBackend;
  const dw = makeOutput(backend, [...filterShape]);
  native.backpropFilter(heap(backend, x!), heap(backend, dy!), heap(backend, dw), geometry.subarray(0, GEOMETRY_VALUES));
  return dw;
}

/**
 * Runs one convolution kernel on the addon: the result, or null when the addon is not loaded or does not cover
 * these attrs (NCHW, dilation, other fused activations, negative padding); the caller then runs its own kernel.
 * wasm-kernels-3d.ts calls this for the 3D kernels, so they stay flow's registered kernels either way.
 */
export function runNativeConvolution(kind: NativeConvolution, args: KernelArgs): TensorInfo | null {
  if (addon === null || tfRef === null) return null;
  switch (kind) {
    case 'conv2d':
    case 'fused2d':
    case 'conv3d':
      return forward(tfRef, addon, args, kind);
    case 'inputGradient':
      return inputGradient(tfRef, addon, args);
    case 'filterGradient':
      return filterGradient(tfRef, addon, args);
  }
}

/**
 * Loads the addon and puts it in front of the wasm 2D convolution kernels (wasm's Conv2D and FusedConv2D, flow's
 * XNNPACK-composed gradients), which stay as the fallback. Returns what was done, also kept for
 * `nativeConvStatus`. Idempotent.
 */
export function registerNativeConvKernels(tf: Tf): NativeConvStatus {
  if (status !== null) return status;
  const loaded = loadAddon();
  if (typeof loaded === 'string') {
    status = { active: false, detail: loaded };
    return status;
  }
  addon = loaded;
  tfRef = tf;
  const inFront = (kernelName: string, kind: NativeConvolution): void => {
    const previous = tf.getKernel(kernelName, BACKEND);
    if (previous === undefined) throw new Error(`wasm backend has no ${kernelName} kernel to put the native one in front of`);
    tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: (args) => runNativeConvolution(kind, args) ?? previous.kernelFunc(args) });
  };
  inFront('Conv2D', 'conv2d');
  inFront('FusedConv2D', 'fused2d');
  inFront('Conv2DBackpropInput', 'inputGradient');
  inFront('Conv2DBackpropFilter', 'filterGradient');
  status = { active: true, detail: loaded.kernels() };
  return status;
}

/** A typed array of the wasm heap (float32, int32 or bool/uint8). */
type HeapArray = Float32Array | Int32Array | Uint8Array;

/**
 * Strided block copy: for each of `rows` rows r, `run` elements from source[sourceOffset + r·sourceStride] to
 * target[targetOffset + r·targetStride]. memcpy in the addon when it is loaded; else JS (TypedArray.set for long
 * runs, where its per-call cost pays off, an element loop for the short channel runs of a feature map).
 */
export function copyBlocks(source: HeapArray, sourceOffset: number, sourceStride: number, target: HeapArray, targetOffset: number, targetStride: number, run: number, rows: number): void {
  if (addon !== null && source.BYTES_PER_ELEMENT === target.BYTES_PER_ELEMENT) {
    addon.copyBlocks(source, sourceOffset, sourceStride, target, targetOffset, targetStride, run, rows);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const from = sourceOffset + r * sourceStride;
    const to = targetOffset + r * targetStride;
    if (run >= 32) target.set(source.subarray(from, from + run), to);
    else for (let i = 0; i < run; i++) target[to + i] = source[from + i]!;
  }
}

/**
 * 2D max pooling's gradient into a zeroed-or-not dx (NHWC, dilation 1; geometry n h w c kh kw sh sw padTop
 * padLeft oh ow): each window's dy goes to its maximum, the first in row-major window order on ties (the cpu
 * backend's rule), windows clipped to the input. In the addon when it is loaded, else the same loops in JS.
 */
export function maxPoolGradient(x: Float32Array, dy: Float32Array, dx: Float32Array, geometry: Int32Array): void {
  if (addon !== null) {
    addon.maxPoolGrad(x, dy, dx, geometry);
    return;
  }
  const [n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow] = Array.from(geometry) as [number, number, number, number, number, number, number, number, number, number, number, number];
  dx.fill(0);
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = Math.max(0, oy * sh - pt);
      const y1 = Math.min(h, oy * sh - pt + kh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = Math.max(0, ox * sw - pl);
        const x1 = Math.min(w, ox * sw - pl + kw);
        best.fill(Number.NEGATIVE_INFINITY);
        where.fill(-1);
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            const base = ((b * h + iy) * w + ix) * c;
            for (let ch = 0; ch < c; ch++) {
              if (x[base + ch]! > best[ch]!) {
                best[ch] = x[base + ch]!;
                where[ch] = base + ch;
              }
            }
          }
        }
        const grad = ((b * oh + oy) * ow + ox) * c;
        for (let ch = 0; ch < c; ch++) if (where[ch]! >= 0) dx[where[ch]!]! += dy[grad + ch]!;
      }
    }
  }
}

/**
 * target[i] = Σ_o source[o·inner + i] (target holds `inner` values), accumulated in float64 in row order: in the
 * addon when it is loaded, else in JS, with the same bits either way.
 */
export function columnSums(source: Float32Array, inner: number, target: Float32Array): void {
  if (addon !== null) {
    addon.columnSums(source, inner, target);
    return;
  }
  const totals = new Float64Array(inner);
  for (let base = 0; base < source.length; base += inner) {
    for (let i = 0; i < inner; i++) totals[i]! += source[base + i]!;
  }
  target.set(totals);
}

/**
 * The addon's own phase timers on this thread since the last call (which resets them), for bench/step-profile.ts;
 * null when the addon is not in use.
 */
export function nativeConvTimers(): Record<string, number> | null {
  return addon === null ? null : addon.timers();
}

/** Whether native convolutions are registered in this process (null before initBackend('wasm')). */
export function nativeConvStatus(): NativeConvStatus | null {
  return status;
}

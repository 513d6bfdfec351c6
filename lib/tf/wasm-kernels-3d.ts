// 3D convolution kernels for the wasm backend, composed from wasm's XNNPACK Conv2D ("depth im2col").
// tfjs-backend-wasm 4.22's own Conv3D is a scalar loop (~66x slower than PyTorch on CPU), and its
// Conv3DBackpropInputV2 / Conv3DBackpropFilterV2 return wrong gradients. A 3D convolution is a 2D convolution
// once the depth taps are moved into channels:
//
//   y[n,od,oh,ow,co] = Σ_{kd} Σ_{kh,kw,ci} x[n, od·sd+kd−front, oh·sh+kh−top, ow·sw+kw−left, ci] · w[kd,kh,kw,ci,co]
//
// so with x'[(n,od), h, w, (kd,ci)] = x[n, od·sd+kd−front, h, w, ci] (zero outside the depth range) and
// w'[kh, kw, (kd,ci), co] = w[kd, kh, kw, ci, co], y' = conv2d(x', w') over H and W, and y = y' reshaped.
//  - filter gradient: dw' = Conv2DBackpropFilter(x', dy'), reshaped/transposed back to [KD,KH,KW,Ci,Co];
//  - input gradient: dx' = Conv2DBackpropInput(dy', w'), then each depth tap's channel chunk is added back
//    at the depth it was gathered from (the transpose of the gather).
// The 2D gradient kernels are flow's (wasm-kernels.ts), called by name through the kernel registry. The
// gather and the scatter-add are plane-sized block copies/adds on the wasm heap; the (kd, ci) interleave is
// one native Transpose. (The gradient of conv3dTranspose itself, missing from tfjs-core, is gradients-3d.ts.)
// MaxPool3D and MaxPool3DGrad are replaced too: wasm's own start each window's maximum at FLT_MIN instead of −∞.
// So are SplitV, Sum and Concat, for rank-4 and rank-5 tensors only: wasm's own index every element in JS /
// transpose generically / copy each channel run with its own TypedArray.set, and took three quarters of a 3D
// U-Net training step (concatenate's gradient, bias gradients) and an eighth of a 2D one (bench/step-profile.ts).
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import { makeRunner, registerWasmGradientKernels, type WasmHeapBackend } from './wasm-kernels.js';
import { columnSums, copyBlocks, runNativeConvolution } from './native-conv.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type Triple = [number, number, number];
type Shape5 = [number, number, number, number, number];
type Padding3d = 'same' | 'valid';
type Run = ReturnType<typeof makeRunner>;

interface Conv3dAttrs {
  strides: number | Triple;
  pad: Padding3d;
  dataFormat?: 'NDHWC' | 'NCDHW';
  dilations?: number | Triple;
}

const BACKEND = 'wasm';
let registered = false;

/** Rows (or columns) of the input a 2D convolution over that axis needs, and the zero padding around them. */
interface AxisWindow {
  /** First input index used (> 0 only when tfjs's padding before is negative: kernel smaller than stride). */
  start: number;
  /** One past the last input index kept. */
  end: number;
  padBefore: number;
  padAfter: number;
}

/** Everything the depth im2col needs, from tfjs's computeConv3DInfo (same padding rules as the cpu backend). */
interface Geometry {
  batch: number;
  inDepth: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outDepth: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterDepth: number;
  filterHeight: number;
  filterWidth: number;
  strideDepth: number;
  strideHeight: number;
  strideWidth: number;
  /** Depth padding before (tfjs's padInfo.front; negative when the kernel is smaller than the stride). */
  front: number;
  rows: AxisWindow;
  cols: AxisWindow;
}

function ones(value: number | Triple | undefined): boolean {
  if (value === undefined) return true;
  return typeof value === 'number' ? value === 1 : value.every((v) => v === 1);
}

/**
 * The input window of one spatial axis. tfjs's 'same' padding for 3D ops is not clamped at zero, so a kernel
 * smaller than its stride gets a negative padding before (the cpu backend then starts at index −before);
 * XNNPACK takes no negative padding, so such rows are cropped instead. Trailing rows no output reads are
 * cropped only where keeping them would change the 2D output size.
 */
function axisWindow(size: number, out: number, stride: number, kernel: number, before: number): AxisWindow {
  const reach = (out - 1) * stride - before + kernel; // one past the last index the last output reads
  const start = Math.max(0, -before);
  const padBefore = Math.max(0, before);
  const padAfter = Math.max(0, reach - size);
  let end = Math.min(size, reach);
  const uncroppedOut = Math.floor((size - start + padBefore + padAfter - kernel) / stride) + 1;
  if (end < size && uncroppedOut === out) end = size;
  return { start, end, padBefore, padAfter };
}

function geometry(tf: Tf, xShape: Shape5, filterShape: Shape5, attrs: Conv3dAttrs, kernel: string): Geometry {
  if (!ones(attrs.dilations)) {
    throw new Error(`flow wasm ${kernel}: dilations ${String(attrs.dilations)} are not supported (dilation 1 only)`);
  }
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NDHWC') {
    throw new Error(`flow wasm ${kernel}: dataFormat ${attrs.dataFormat} is not supported (NDHWC, channels last, only)`);
  }
  const info = tf.backend_util.computeConv3DInfo(xShape, filterShape, attrs.strides, 1, attrs.pad);
  const { top, left, front } = info.padInfo;
  if (front === undefined) throw new Error(`flow wasm ${kernel}: tfjs returned no depth padding`);
  return {
    batch: info.batchSize,
    inDepth: info.inDepth,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outDepth: info.outDepth,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterDepth: info.filterDepth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideDepth: info.strideDepth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    front,
    rows: axisWindow(info.inHeight, info.outHeight, info.strideHeight, info.filterHeight, top),
    cols: axisWindow(info.inWidth, info.outWidth, info.strideWidth, info.filterWidth, left),
  };
}

function isCropped(g: Geometry): boolean {
  return g.rows.start > 0 || g.rows.end < g.inHeight || g.cols.start > 0 || g.cols.end < g.inWidth;
}

/** True when x' is x itself, reshaped: one depth tap, stride 1, no depth padding (e.g. a 1x1x1 head). */
function depthIsIdentity(g: Geometry): boolean {
  return g.filterDepth === 1 && g.strideDepth === 1 && g.front === 0 && g.outDepth === g.inDepth;
}

/** The 2D attributes shared by the forward conv and both 2D gradient kernels (explicit, non-negative pads). */
function conv2dAttrs(g: Geometry) {
  return {
    strides: [g.strideHeight, g.strideWidth] as [number, number],
    dilations: [1, 1] as [number, number],
    pad: [
      [0, 0],
      [g.rows.padBefore, g.rows.padAfter],
      [g.cols.padBefore, g.cols.padAfter],
      [0, 0],
    ] as [[number, number], [number, number], [number, number], [number, number]],
    dataFormat: 'NHWC' as const,
  };
}

/** The [H,W] view of x' the 2D convolution sees, after any crop. */
function croppedSize(g: Geometry): [number, number] {
  return [g.rows.end - g.rows.start, g.cols.end - g.cols.start];
}

function heapOf(backend: KernelBackend): WasmHeapBackend {
  return backend as unknown as WasmHeapBackend;
}

function float32View(backend: KernelBackend, info: TensorInfo, what: string): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`flow wasm 3D kernel: ${what} must be float32, got ${info.dtype}`);
  return heapOf(backend).typedArrayFromHeap(info) as Float32Array;
}

/**
 * Depth gather: planes[kd, n·OD+od] = x[n, od·sd+kd−front] (an H·W·Ci plane, zeros outside the depth range),
 * written straight into one new heap tensor of shape [KD, N·OD·H·W, Ci].
 */
function gatherDepthPlanes(backend: KernelBackend, x: TensorInfo, g: Geometry): TensorInfo {
  const plane = g.inHeight * g.inWidth * g.inChannels;
  const out = heapOf(backend).makeOutput([g.filterDepth, g.batch * g.outDepth * g.inHeight * g.inWidth, g.inChannels], 'float32');
  // Views after makeOutput: allocating may grow (and move) the wasm heap.
  const source = float32View(backend, x, 'x');
  const target = float32View(backend, out, 'the gathered planes');
  let offset = 0;
  for (let kd = 0; kd < g.filterDepth; kd++) {
    for (let n = 0; n < g.batch; n++) {
      for (let od = 0; od < g.outDepth; od++) {
        const d = od * g.strideDepth + kd - g.front;
        if (d >= 0 && d < g.inDepth) {
          const from = (n * g.inDepth + d) * plane;
          target.set(source.subarray(from, from + plane), offset);
        } else {
          target.fill(0, offset, offset + plane);
        }
        offset += plane;
      }
    }
  }
  return out;
}

/** The transpose of gatherDepthPlanes: dx[n, od·sd+kd−front] += planes[kd, n·OD+od], over a zeroed [N,D,H,W,Ci]. */
function scatterAddDepthPlanes(backend: KernelBackend, planes: TensorInfo, g: Geometry): TensorInfo {
  const plane = g.inHeight * g.inWidth * g.inChannels;
  const out = heapOf(backend).makeOutput([g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels], 'float32');
  const source = float32View(backend, planes, 'the input gradient planes');
  const target = float32View(backend, out, 'dx');
  target.fill(0);
  for (let kd = 0; kd < g.filterDepth; kd++) {
    for (let n = 0; n < g.batch; n++) {
      for (let od = 0; od < g.outDepth; od++) {
        const d = od * g.strideDepth + kd - g.front;
        if (d < 0 || d >= g.inDepth) continue;
        const from = ((kd * g.batch + n) * g.outDepth + od) * plane;
        const to = (n * g.inDepth + d) * plane;
        for (let i = 0; i < plane; i++) target[to + i]! += source[from + i]!;
      }
    }
  }
  return out;
}

/** x [N,D,H,W,Ci] → x' [N·OD, Hc, Wc, KD·Ci] (Hc, Wc: after any crop), channel index kd·Ci + ci. */
function depthIm2col(runner: Run, backend: KernelBackend, x: TensorInfo, g: Geometry): TensorInfo {
  const { run, track } = runner;
  const { batch, outDepth, inHeight, inWidth, inChannels, filterDepth } = g;
  let columns: TensorInfo;
  if (depthIsIdentity(g)) {
    columns = run('Reshape', { x }, { shape: [batch * outDepth, inHeight, inWidth, inChannels] });
  } else {
    const planes = track(gatherDepthPlanes(backend, x, g)); // [KD, N·OD·H·W, Ci]
    const interleaved = filterDepth === 1 ? planes : run('Transpose', { x: planes }, { perm: [1, 0, 2] }); // [N·OD·H·W, KD, Ci]
    columns = run('Reshape', { x: interleaved }, { shape: [batch * outDepth, inHeight, inWidth, filterDepth * inChannels] });
  }
  if (!isCropped(g)) return columns;
  const [hc, wc] = croppedSize(g);
  return run('Slice', { x: columns }, { begin: [0, g.rows.start, g.cols.start, 0], size: [batch * outDepth, hc, wc, filterDepth * inChannels] });
}

/** filter [KD,KH,KW,Ci,Co] → w' [KH,KW,KD·Ci,Co]. */
function foldFilter(runner: Run, filter: TensorInfo, g: Geometry): TensorInfo {
  const { filterDepth: kd, filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = g;
  const moved = kd === 1 ? filter : runner.run('Transpose', { x: filter }, { perm: [1, 2, 0, 3, 4] }); // [KH,KW,KD,Ci,Co]
  return runner.run('Reshape', { x: moved }, { shape: [kh, kw, kd * ci, co] });
}

function expectShape(info: TensorInfo, expected: number[], what: string): void {
  if (info.shape.length !== expected.length || info.shape.some((size, i) => size !== expected[i])) {
    throw new Error(`flow wasm 3D convolution: ${what} has shape [${info.shape}], expected [${expected}]`);
  }
}

function conv3d(tf: Tf, inputs: { x: TensorInfo; filter: TensorInfo }, attrs: Conv3dAttrs, backend: KernelBackend): TensorInfo {
  const { x, filter } = inputs;
  const g = geometry(tf, x.shape as Shape5, filter.shape as Shape5, attrs, 'Conv3D');
  const runner = makeRunner(tf, backend);
  const columns = depthIm2col(runner, backend, x, g);
  const folded = foldFilter(runner, filter, g);
  const y2d = runner.run('Conv2D', { x: columns, filter: folded }, conv2dAttrs(g));
  expectShape(y2d, [g.batch * g.outDepth, g.outHeight, g.outWidth, g.outChannels], 'the 2D convolution output');
  const y = runner.run('Reshape', { x: y2d }, { shape: [g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels] });
  runner.disposeAllBut(y);
  return y;
}

function conv3dBackpropFilter(
  tf: Tf,
  inputs: { x: TensorInfo; dy: TensorInfo },
  attrs: Conv3dAttrs & { filterShape: Shape5 },
  backend: KernelBackend,
): TensorInfo {
  const { x, dy } = inputs;
  const g = geometry(tf, x.shape as Shape5, attrs.filterShape, attrs, 'Conv3DBackpropFilterV2');
  const runner = makeRunner(tf, backend);
  const { run } = runner;
  const columns = depthIm2col(runner, backend, x, g);
  const dy2d = run('Reshape', { x: dy }, { shape: [g.batch * g.outDepth, g.outHeight, g.outWidth, g.outChannels] });
  const { filterDepth: kd, filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = g;
  const folded = run('Conv2DBackpropFilter', { x: columns, dy: dy2d }, { ...conv2dAttrs(g), filterShape: [kh, kw, kd * ci, co] });
  expectShape(folded, [kh, kw, kd * ci, co], 'the 2D filter gradient');
  const split = run('Reshape', { x: folded }, { shape: [kh, kw, kd, ci, co] });
  const dw = kd === 1 ? run('Reshape', { x: split }, { shape: [1, kh, kw, ci, co] }) : run('Transpose', { x: split }, { perm: [2, 0, 1, 3, 4] });
  runner.disposeAllBut(dw);
  return dw;
}

function conv3dBackpropInput(
  tf: Tf,
  inputs: { dy: TensorInfo; filter: TensorInfo },
  attrs: Conv3dAttrs & { inputShape: Shape5 },
  backend: KernelBackend,
): TensorInfo {
  const { dy, filter } = inputs;
  const g = geometry(tf, attrs.inputShape, filter.shape as Shape5, attrs, 'Conv3DBackpropInputV2');
  const runner = makeRunner(tf, backend);
  const { run, track } = runner;
  const { batch, outDepth, inHeight, inWidth, inChannels, filterDepth } = g;
  const dy2d = run('Reshape', { x: dy }, { shape: [batch * outDepth, g.outHeight, g.outWidth, g.outChannels] });
  const folded = foldFilter(runner, filter, g);
  const [hc, wc] = croppedSize(g);
  let columns = run('Conv2DBackpropInput', { dy: dy2d, filter: folded }, { ...conv2dAttrs(g), inputShape: [batch * outDepth, hc, wc, filterDepth * inChannels] });
  expectShape(columns, [batch * outDepth, hc, wc, filterDepth * inChannels], 'the 2D input gradient');
  if (isCropped(g)) {
    // Cropped rows/columns fed no output: their gradient is zero.
    const paddings = [
      [0, 0],
      [g.rows.start, inHeight - g.rows.end],
      [g.cols.start, inWidth - g.cols.end],
      [0, 0],
    ];
    columns = run('PadV2', { x: columns }, { paddings, constantValue: 0 });
  }
  let dx: TensorInfo;
  if (depthIsIdentity(g)) {
    dx = run('Reshape', { x: columns }, { shape: [batch, g.inDepth, inHeight, inWidth, inChannels] });
  } else {
    // [N·OD·H·W, KD, Ci] → [KD, N·OD·H·W, Ci]: each depth tap's chunk becomes contiguous planes.
    const grouped = run('Reshape', { x: columns }, { shape: [batch * outDepth * inHeight * inWidth, filterDepth, inChannels] });
    const planes = filterDepth === 1 ? grouped : run('Transpose', { x: grouped }, { perm: [1, 0, 2] });
    dx = track(scatterAddDepthPlanes(backend, planes, g));
  }
  runner.disposeAllBut(dx);
  return dx;
}

interface Pool3dAttrs {
  filterSize: number | Triple;
  strides: number | Triple;
  pad: Padding3d | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NDHWC' | 'NCDHW';
}

type Pool3dInfo = ReturnType<Tf['backend_util']['computePool3DInfo']>;

function poolInfo(tf: Tf, xShape: Shape5, attrs: Pool3dAttrs, kernel: string): Pool3dInfo {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NDHWC') {
    throw new Error(`flow wasm ${kernel}: dataFormat ${attrs.dataFormat} is not supported (NDHWC, channels last, only)`);
  }
  return tf.backend_util.computePool3DInfo(xShape, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
}

/**
 * Visits every pooling window: `visit(outOffset, inOffsets, count)` gets the output's first-channel offset and
 * the first-channel input offsets of the window's `count` voxels, in (d, h, w) order. Windows are the cpu
 * backend's: corner at o·s − pad (tfjs's padInfo), clipped to the input.
 */
function forEachPoolWindow(info: Pool3dInfo, visit: (outOffset: number, inOffsets: Int32Array, count: number) => void): void {
  const { batchSize: n, inDepth: d, inHeight: h, inWidth: w, inChannels: c, outDepth: od, outHeight: oh, outWidth: ow } = info;
  const { front = 0, top, left } = info.padInfo;
  const inOffsets = new Int32Array(info.filterDepth * info.filterHeight * info.filterWidth);
  let outOffset = 0;
  for (let b = 0; b < n; b++) {
    for (let z = 0; z < od; z++) {
      const z0 = z * info.strideDepth - front;
      const zFrom = Math.max(0, z0);
      const zTo = Math.min(d, z0 + info.filterDepth);
      for (let y = 0; y < oh; y++) {
        const y0 = y * info.strideHeight - top;
        const yFrom = Math.max(0, y0);
        const yTo = Math.min(h, y0 + info.filterHeight);
        for (let x = 0; x < ow; x++) {
          const x0 = x * info.strideWidth - left;
          const xFrom = Math.max(0, x0);
          const xTo = Math.min(w, x0 + info.filterWidth);
          let count = 0;
          for (let zi = zFrom; zi < zTo; zi++) {
            for (let yi = yFrom; yi < yTo; yi++) {
              for (let xi = xFrom; xi < xTo; xi++) inOffsets[count++] = (((b * d + zi) * h + yi) * w + xi) * c;
            }
          }
          visit(outOffset, inOffsets, count);
          outOffset += c;
        }
      }
    }
  }
}

/**
 * Max pooling over the channels-last heap directly. wasm's own MaxPool3D starts each window's maximum at
 * FLT_MIN (+1.2e-38) instead of −∞, so any window whose values are all ≤ 0 returns 1.2e-38 and its gradient
 * is lost.
 */
function maxPool3d(tf: Tf, inputs: { x: TensorInfo }, attrs: Pool3dAttrs, backend: KernelBackend): TensorInfo {
  const { x } = inputs;
  const info = poolInfo(tf, x.shape as Shape5, attrs, 'MaxPool3D');
  const channels = info.inChannels;
  const out = heapOf(backend).makeOutput(info.outShape, 'float32');
  const source = float32View(backend, x, 'x');
  const target = float32View(backend, out, 'the pooled output');
  forEachPoolWindow(info, (o, offsets, count) => {
    target.fill(Number.NEGATIVE_INFINITY, o, o + channels);
    for (let i = 0; i < count; i++) {
      const base = offsets[i]!;
      for (let ch = 0; ch < channels; ch++) {
        const value = source[base + ch]!;
        if (value > target[o + ch]!) target[o + ch] = value;
      }
    }
  });
  return out;
}

/** dx: each window's dy goes to its maximum, the last one in (d, h, w) order on ties (as the cpu backend). */
function maxPool3dGrad(tf: Tf, inputs: { dy: TensorInfo; input: TensorInfo }, attrs: Pool3dAttrs, backend: KernelBackend): TensorInfo {
  const { dy, input } = inputs;
  const info = poolInfo(tf, input.shape as Shape5, attrs, 'MaxPool3DGrad');
  const channels = info.inChannels;
  const out = heapOf(backend).makeOutput(input.shape, 'float32');
  const source = float32View(backend, input, 'the pooled input');
  const upstream = float32View(backend, dy, 'dy');
  const target = float32View(backend, out, 'dx');
  target.fill(0);
  const best = new Float32Array(channels);
  const argmax = new Int32Array(channels);
  forEachPoolWindow(info, (o, offsets, count) => {
    best.fill(Number.NEGATIVE_INFINITY);
    argmax.fill(-1);
    for (let i = 0; i < count; i++) {
      const base = offsets[i]!;
      for (let ch = 0; ch < channels; ch++) {
        const value = source[base + ch]!;
        if (value >= best[ch]!) {
          best[ch] = value;
          argmax[ch] = base + ch;
        }
      }
    }
    for (let ch = 0; ch < channels; ch++) if (argmax[ch]! >= 0) target[argmax[ch]!]! += upstream[o + ch]!;
  });
  return out;
}

type KernelArgs = Parameters<KernelConfig['kernelFunc']>[0];

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Ranks the block-copy SplitV / Concat and the column-sum Sum take (a 2D or 3D U-Net's feature maps). */
function blockRank(shape: readonly number[]): boolean {
  return shape.length === 4 || shape.length === 5;
}

/**
 * SplitV of rank-4/5 tensors by block copies. wasm's own SplitV slices each piece with its generic Slice, which
 * indexes every element in JS: splitting the gradient of a 3D U-Net's skip concatenation took over half of a
 * training step. Viewed as [outer, axis, inner], each piece is `outer` contiguous runs. Other ranks (and strings)
 * go to wasm's own kernel.
 */
function splitVByBlocks(tf: Tf, own: KernelConfig, args: KernelArgs): TensorInfo[] {
  const x = args.inputs.x!;
  if (!blockRank(x.shape) || x.dtype === 'string') return own.kernelFunc(args) as TensorInfo[];
  const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number | number[] };
  const backend = args.backend as KernelBackend;
  const heap = heapOf(backend);
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, $axis);
  const outer = sizeOf(x.shape.slice(0, $axis));
  const inner = sizeOf(x.shape.slice($axis + 1));
  const rowLength = x.shape[$axis]! * inner;
  const pieces: TensorInfo[] = [];
  let offset = 0;
  for (const size of sizes) {
    const shape = [...x.shape];
    shape[$axis] = size;
    const out = heap.makeOutput(shape, x.dtype);
    // Views after makeOutput: allocating may grow (and move) the wasm heap.
    const source = heap.typedArrayFromHeap(x);
    const target = heap.typedArrayFromHeap(out);
    const run = size * inner;
    copyBlocks(source, offset * inner, rowLength, target, 0, run, run, outer);
    pieces.push(out);
    offset += size;
  }
  return pieces;
}

/**
 * Concat of float32 rank-4/5 tensors by block copies: viewed as [outer, axis, inner], row o of the output is each
 * input's row o in turn. wasm's own copies every (row, input) run with its own TypedArray.set, which for a skip
 * concatenation's short channel runs costs more than the copy. Anything else goes to wasm's own kernel.
 */
function concatByBlocks(tf: Tf, own: KernelConfig, args: KernelArgs): TensorInfo {
  const inputs = (args.inputs as unknown as TensorInfo[]).filter((t) => sizeOf(t.shape) > 0);
  if (inputs.length < 2 || !inputs.every((t) => blockRank(t.shape) && t.dtype === 'float32')) return own.kernelFunc(args) as TensorInfo;
  const backend = args.backend as KernelBackend;
  const $axis = tf.util.parseAxisParam((args.attrs as unknown as { axis: number | number[] }).axis, inputs[0]!.shape)[0]!;
  const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), $axis);
  const outer = sizeOf(outShape.slice(0, $axis));
  const runs = inputs.map((t) => sizeOf(t.shape.slice($axis)));
  const rowLength = runs.reduce((a, b) => a + b, 0);
  const out = heapOf(backend).makeOutput(outShape, 'float32');
  // Views after makeOutput: allocating may grow (and move) the wasm heap.
  const target = float32View(backend, out, 'the concatenation');
  let offset = 0;
  inputs.forEach((input, i) => {
    const source = float32View(backend, input, `concat input ${i}`);
    const run = runs[i]!;
    copyBlocks(source, 0, run, target, offset, rowLength, run, outer);
    offset += run;
  });
  return out;
}

/**
 * Sum of a float32 rank-4/5 tensor over leading axes (a bias gradient: all but channels; a loss: all), as column
 * sums with float64 accumulators (as the cpu backend accumulates). wasm's own Sum first transposes the reduced
 * axes innermost with its generic Transpose: the bias gradients alone took a fifth of a 3D U-Net step.
 * Anything else goes to wasm's own kernel.
 */
function sumOverLeadingAxes(tf: Tf, own: KernelConfig, args: KernelArgs): TensorInfo {
  const x = args.inputs.x!;
  const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
  if (!blockRank(x.shape) || x.dtype !== 'float32') return own.kernelFunc(args) as TensorInfo;
  const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
  if (axes.length === 0 || !axes.every((a, i) => a === i)) return own.kernelFunc(args) as TensorInfo;
  const backend = args.backend as KernelBackend;
  const reduced = axes.length;
  const outer = sizeOf(x.shape.slice(0, reduced));
  const inner = sizeOf(x.shape.slice(reduced));
  const outShape = keepDims ? x.shape.map((size, i) => (i < reduced ? 1 : size)) : x.shape.slice(reduced);
  const out = heapOf(backend).makeOutput(outShape, 'float32');
  if (outer === 0 || inner === 0) {
    float32View(backend, out, 'the sum').fill(0);
    return out;
  }
  columnSums(float32View(backend, x, 'x'), inner, float32View(backend, out, 'the sum'));
  return out;
}

/** The kernels flow registers on wasm. */
export const wasm3dKernelNames = [
  'Conv3D',
  'Conv3DBackpropInputV2',
  'Conv3DBackpropFilterV2',
  'MaxPool3D',
  'MaxPool3DGrad',
  'SplitV',
  'Sum',
  'Concat',
] as const;
/** Their kernel functions, so `usesFlowWasm3dKernels` can tell them from wasm's own. */
const flowKernelFuncs = new Set<unknown>();
/** wasm's own configs that flow's replaced (already set up by the backend), for restoreWasmOwn3dKernels. */
const wasmOwnKernels: KernelConfig[] = [];

/** True when every kernel in wasm3dKernelNames currently registered on wasm is flow's. */
export function usesFlowWasm3dKernels(tf: Tf): boolean {
  return wasm3dKernelNames.every((name) => flowKernelFuncs.has(tf.getKernel(name, BACKEND)?.kernelFunc));
}

/**
 * Registers flow's Conv3D, Conv3DBackpropInputV2, Conv3DBackpropFilterV2, MaxPool3D and MaxPool3DGrad on the
 * wasm backend (replacing wasm's own), SplitV, Sum and Concat for rank-4/5 tensors (other ranks still run wasm's own), and
 * the 2D gradient kernels the convolutions are built from. Idempotent. wasm's AvgPool3D and AvgPool3DGrad are
 * kept: they match the cpu backend.
 */
export function registerWasm3dKernels(tf: Tf): void {
  if (registered) return;
  registerWasmGradientKernels(tf);
  for (const name of wasm3dKernelNames) {
    const own = tf.getKernel(name, BACKEND);
    if (own === undefined) continue;
    wasmOwnKernels.push(own);
    tf.unregisterKernel(name, BACKEND);
  }
  const ownKernel = (name: string): KernelConfig => {
    const own = wasmOwnKernels.find((config) => config.kernelName === name);
    if (own === undefined) throw new Error(`wasm backend has no ${name} kernel`);
    return own;
  };
  const ownSplitV = ownKernel('SplitV');
  const ownSum = ownKernel('Sum');
  const ownConcat = ownKernel('Concat');
  const kernels: KernelConfig[] = [
    {
      kernelName: 'Conv3D',
      backendName: BACKEND,
      // The native addon first (a single im2col + GEMM) where it is built and applies; else the 2D composition.
      kernelFunc: (args) =>
        runNativeConvolution('conv3d', args) ??
        conv3d(tf, args.inputs as { x: TensorInfo; filter: TensorInfo }, args.attrs as unknown as Conv3dAttrs, args.backend as KernelBackend),
    },
    {
      kernelName: 'Conv3DBackpropFilterV2',
      backendName: BACKEND,
      kernelFunc: (args) =>
        runNativeConvolution('filterGradient', args) ??
        conv3dBackpropFilter(
          tf,
          args.inputs as { x: TensorInfo; dy: TensorInfo },
          args.attrs as unknown as Conv3dAttrs & { filterShape: Shape5 },
          args.backend as KernelBackend,
        ),
    },
    {
      kernelName: 'Conv3DBackpropInputV2',
      backendName: BACKEND,
      kernelFunc: (args) =>
        runNativeConvolution('inputGradient', args) ??
        conv3dBackpropInput(
          tf,
          args.inputs as { dy: TensorInfo; filter: TensorInfo },
          args.attrs as unknown as Conv3dAttrs & { inputShape: Shape5 },
          args.backend as KernelBackend,
        ),
    },
    {
      kernelName: 'MaxPool3D',
      backendName: BACKEND,
      kernelFunc: ({ inputs, attrs, backend }) =>
        maxPool3d(tf, inputs as { x: TensorInfo }, attrs as unknown as Pool3dAttrs, backend as KernelBackend),
    },
    {
      kernelName: 'MaxPool3DGrad',
      backendName: BACKEND,
      kernelFunc: ({ inputs, attrs, backend }) =>
        maxPool3dGrad(tf, inputs as { dy: TensorInfo; input: TensorInfo }, attrs as unknown as Pool3dAttrs, backend as KernelBackend),
    },
    { kernelName: 'SplitV', backendName: BACKEND, kernelFunc: (args) => splitVByBlocks(tf, ownSplitV, args) },
    { kernelName: 'Sum', backendName: BACKEND, kernelFunc: (args) => sumOverLeadingAxes(tf, ownSum, args) },
    { kernelName: 'Concat', backendName: BACKEND, kernelFunc: (args) => concatByBlocks(tf, ownConcat, args) },
  ];
  for (const kernel of kernels) {
    tf.registerKernel(kernel);
    flowKernelFuncs.add(kernel.kernelFunc);
  }
  registered = true;
}

/**
 * Puts wasm's own 3D kernels back in place of flow's (for bench/conv3d.ts, which measures both in one
 * process tree). Their gradients are wrong: never train with them.
 */
export function restoreWasmOwn3dKernels(tf: Tf): void {
  if (!registered) return;
  for (const name of wasm3dKernelNames) tf.unregisterKernel(name, BACKEND);
  for (const own of wasmOwnKernels.splice(0)) tf.registerKernel(own);
  registered = false;
}

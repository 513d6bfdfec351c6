// Convolution gradient kernels for the wasm backend, composed from wasm's own XNNPACK-backed kernels.
// tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter at all (training a conv net throws), and its
// Conv2DBackpropInput is a plain scalar loop that takes about two thirds of a U-Net training step. Both
// gradients are convolutions themselves, so they are re-expressed as one wasm Conv2D each (plus cheap
// transposes/pads), which runs through XNNPACK's packed, SIMD GEMM.
//
// Forward (NHWC, dilation 1): y[n,oh,ow,co] = Σ_{kh,kw,ci} x[n, oh·s+kh−pt, ow·s+kw−pl, ci] · w[kh,kw,ci,co]
//  - filter gradient: dw[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s+kh−pt, …, ci] · dy[n,oh,ow,co]: a valid
//    convolution of x viewed as [Ci,H,W,N] (batch = ci, channels = n) with dy viewed as the filter
//    [OH,OW,N,Co], at dilation s; its [Ci,KH,KW,Co] result is transposed back to [KH,KW,Ci,Co].
//  - input gradient: dx = dy dilated by s (s−1 zeros between rows/columns), padded by K−1−pt before,
//    convolved (stride 1) with w flipped in space and with in/out channels swapped.
import type { KernelBackend, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { maxPoolGradient } from './native-conv.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type Pair = [number, number];
type Shape4 = [number, number, number, number];

interface ConvGradAttrs {
  strides: number | Pair;
  pad: 'same' | 'valid' | number | [Pair, Pair, Pair, Pair];
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

const BACKEND = 'wasm';
let registered = false;

/**
 * Calls one of wasm's registered kernels directly on TensorInfos (no engine bookkeeping, no tape). Also used by
 * wasm-kernels-3d.ts, which composes the 3D convolutions from these 2D kernels.
 */
export function makeRunner(tf: Tf, backend: KernelBackend) {
  const temps: TensorInfo[] = [];
  const run = (kernelName: string, inputs: Record<string, TensorInfo>, attrs: object): TensorInfo => {
    const config = tf.getKernel(kernelName, BACKEND);
    if (config === undefined) throw new Error(`wasm backend has no ${kernelName} kernel`);
    const out = config.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
    temps.push(out);
    return out;
  };
  /** Adds a TensorInfo made outside `run` (e.g. written straight into the heap) to the intermediates. */
  const track = (info: TensorInfo): TensorInfo => {
    temps.push(info);
    return info;
  };
  /** Frees every intermediate except `keep` (the kernel's result, which the engine takes over). */
  const disposeAllBut = (keep: TensorInfo): void => {
    for (const info of temps) if (info !== keep) backend.disposeData(info.dataId);
  };
  return { run, track, disposeAllBut };
}

function pair(value: number | Pair): Pair {
  return typeof value === 'number' ? [value, value] : value;
}

function convInfo(tf: Tf, inputShape: Shape4, filterShape: Shape4, attrs: ConvGradAttrs) {
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('flow wasm conv gradients support NHWC (channelsLast) only, as wasm Conv2D itself');
  }
  return tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

function conv2dBackpropFilter(
  tf: Tf,
  inputs: { x: TensorInfo; dy: TensorInfo },
  attrs: ConvGradAttrs & { filterShape: Shape4 },
  backend: KernelBackend,
): TensorInfo {
  const { x, dy } = inputs;
  const info = convInfo(tf, x.shape as Shape4, attrs.filterShape, attrs);
  const [strideH, strideW] = pair(attrs.strides);
  const { filterHeight: kh, filterWidth: kw, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow } = info;
  const { top, left } = info.padInfo;
  // Padding after so the last output position's window fits; never negative (then extra rows are sliced off).
  const bottom = Math.max(0, (oh - 1) * strideH + kh - h - top);
  const right = Math.max(0, (ow - 1) * strideW + kw - w - left);
  const { run, disposeAllBut } = makeRunner(tf, backend);
  const xT = run('Transpose', { x }, { perm: [3, 1, 2, 0] }); // [Ci, H, W, N]
  const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, N, Co]
  let grad = run(
    'Conv2D',
    { x: xT, filter: dyT },
    {
      strides: [1, 1],
      dilations: [strideH, strideW],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  ); // [Ci, ≥KH, ≥KW, Co]
  if (grad.shape[1] !== kh || grad.shape[2] !== kw) {
    grad = run('Slice', { x: grad }, { begin: [0, 0, 0, 0], size: [grad.shape[0], kh, kw, grad.shape[3]] });
  }
  const result = run('Transpose', { x: grad }, { perm: [1, 2, 0, 3] }); // [KH, KW, Ci, Co]
  disposeAllBut(result);
  return result;
}

function conv2dBackpropInput(
  tf: Tf,
  inputs: { dy: TensorInfo; filter: TensorInfo },
  attrs: ConvGradAttrs & { inputShape: Shape4 },
  backend: KernelBackend,
): TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo(tf, attrs.inputShape, filter.shape as Shape4, attrs);
  const [strideH, strideW] = pair(attrs.strides);
  const { batchSize: n, filterHeight: kh, filterWidth: kw, inHeight: h, inWidth: w, inChannels: ci } = info;
  const { outHeight: oh, outWidth: ow, outChannels: co } = info;
  const { top, left } = info.padInfo;
  const { run, disposeAllBut } = makeRunner(tf, backend);

  // Dilate dy by the stride: view as [N,OH,1,OW,1,Co] and pad the unit axes with s−1 zeros after, giving
  // [N, OH·s, OW·s, Co] (s−1 trailing zeros already included in each spatial axis).
  let dilated = dy;
  if (strideH > 1 || strideW > 1) {
    const expanded = run('Reshape', { x: dy }, { shape: [n, oh, 1, ow, 1, co] });
    const padded = run(
      'PadV2',
      { x: expanded },
      {
        paddings: [
          [0, 0],
          [0, 0],
          [0, strideH - 1],
          [0, 0],
          [0, strideW - 1],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
    dilated = run('Reshape', { x: padded }, { shape: [n, oh * strideH, ow * strideW, co] });
  }
  // Flip the filter in space and swap in/out channels: [KH,KW,Ci,Co] → [KH,KW,Co,Ci].
  const flipped = run('Reverse', { x: filter }, { dims: [0, 1] });
  const swapped = run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });

  const padTop = kh - 1 - top;
  const padLeft = kw - 1 - left;
  if (padTop < 0 || padLeft < 0) {
    throw new Error(`wasm Conv2DBackpropInput: padding ${top}/${left} larger than filter ${kh}x${kw} − 1`);
  }
  // Dilated length is OH·s; the correlation needs H + K − 1 rows in all.
  const padBottom = Math.max(0, h + kh - 1 - padTop - oh * strideH);
  const padRight = Math.max(0, w + kw - 1 - padLeft - ow * strideW);
  let dx = run(
    'Conv2D',
    { x: dilated, filter: swapped },
    {
      strides: [1, 1],
      dilations: [1, 1],
      pad: [
        [0, 0],
        [padTop, padBottom],
        [padLeft, padRight],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  if (dx.shape[1] !== h || dx.shape[2] !== w) {
    dx = run('Slice', { x: dx }, { begin: [0, 0, 0, 0], size: [n, h, w, ci] });
  }
  disposeAllBut(dx);
  return dx;
}

/** The parts of tfjs-backend-wasm's backend that expose tensors as views of the wasm heap. */
export interface WasmHeapBackend {
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  incRef(dataId: object): void;
}

/**
 * Identity as the cpu backend does it: the output shares the input's data (one more reference) instead of a copy.
 * wasm's own copies; a U-Net step runs ~140 of them (gradients passed through adds, concatenations, the tape),
 * about 3% of the step. No kernel writes into its inputs, so sharing is safe. Strings go to wasm's own kernel.
 */
function identityByReference(own: KernelConfig, args: Parameters<KernelConfig['kernelFunc']>[0]): TensorInfo {
  const x = args.inputs.x!;
  if (x.dtype === 'string') return own.kernelFunc(args) as TensorInfo;
  (args.backend as unknown as WasmHeapBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Tile by block copies. wasm's own Tile computes every output index separately, and batch-norm's gradient
 * tiles per-channel vectors to the full activation shape: that alone took a quarter of a U-Net step.
 * Works from the innermost axis outwards: each pass repeats contiguous blocks with TypedArray.set.
 */
function tileByBlocks(inputs: { x: TensorInfo }, attrs: { reps: number[] }, backend: KernelBackend): TensorInfo {
  const { x } = inputs;
  const heapBackend = backend as unknown as WasmHeapBackend;
  const rank = x.shape.length;
  const outShape = x.shape.map((size, i) => size * attrs.reps[i]!);
  const out = heapBackend.makeOutput(outShape, x.dtype);
  // Views after makeOutput: allocating may grow (and move) the wasm heap.
  const source = heapBackend.typedArrayFromHeap(x);
  const target = heapBackend.typedArrayFromHeap(out);
  if (source.length === 0 || target.length === 0) return out;
  // `current` holds x tiled along the axes after `axis`; shapes [s0..s_axis, o_{axis+1}..].
  let current: Float32Array | Int32Array | Uint8Array = source;
  let inner = 1; // product of the already-tiled trailing sizes
  for (let axis = rank - 1; axis >= 0; axis--) {
    const reps = attrs.reps[axis]!;
    const block = x.shape[axis]! * inner;
    const outer = current.length / block;
    if (reps !== 1) {
      const last = axis === 0 || x.shape.slice(0, axis).every((_size, i) => attrs.reps[i] === 1);
      const next = last ? target : new (current.constructor as Float32ArrayConstructor)(current.length * reps);
      for (let o = 0; o < outer; o++) {
        const chunk = current.subarray(o * block, (o + 1) * block);
        for (let r = 0; r < reps; r++) next.set(chunk, (o * reps + r) * block);
      }
      current = next;
      if (last) return out;
    }
    inner *= outShape[axis]!;
  }
  target.set(current); // every rep was 1
  return out;
}

interface PoolAttrs {
  filterSize: number | Pair;
  strides: number | Pair;
  pad: 'same' | 'valid' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * 2D max pooling's gradient (native-conv.ts's maxPoolGradient: the addon, else JS). wasm's own gives each tied
 * window's gradient to another position than the cpu backend (a ReLU map's all-zero windows are ties) and took
 * 6-8% of a U-Net step. Other dtypes and negative padding go to wasm's own kernel.
 */
function maxPoolGrad(tf: Tf, own: KernelConfig, args: Parameters<KernelConfig['kernelFunc']>[0]): TensorInfo {
  const { dy, input } = args.inputs as Record<string, TensorInfo>;
  const attrs = args.attrs as unknown as PoolAttrs;
  if (input!.dtype !== 'float32' || dy!.dtype !== 'float32' || input!.shape.length !== 4) return own.kernelFunc(args) as TensorInfo;
  const info = tf.backend_util.computePool2DInfo(input!.shape as Shape4, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { top, left } = info.padInfo;
  if (top < 0 || left < 0) return own.kernelFunc(args) as TensorInfo;
  const geometry = Int32Array.from([info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, top, left, info.outHeight, info.outWidth]);
  const heap = args.backend as unknown as WasmHeapBackend;
  const dx = heap.makeOutput([...input!.shape], 'float32');
  // Views after makeOutput: allocating may grow (and move) the wasm heap.
  const view = (info: TensorInfo) => heap.typedArrayFromHeap(info) as Float32Array;
  maxPoolGradient(view(input!), view(dy!), view(dx), geometry);
  return dx;
}

/**
 * Registers the conv gradient kernels on the wasm backend (replacing wasm's own Conv2DBackpropInput), a
 * block-copy Tile, MaxPoolGrad and an Identity that shares its input's data.
 * Idempotent; called by `initBackend('wasm')`.
 */
export function registerWasmGradientKernels(tf: Tf): void {
  if (registered) return;
  if (tf.getKernel('Conv2DBackpropInput', BACKEND) !== undefined) tf.unregisterKernel('Conv2DBackpropInput', BACKEND);
  if (tf.getKernel('Conv2DBackpropFilter', BACKEND) !== undefined) tf.unregisterKernel('Conv2DBackpropFilter', BACKEND);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: BACKEND,
    kernelFunc: ({ inputs, attrs, backend }) =>
      conv2dBackpropFilter(
        tf,
        inputs as { x: TensorInfo; dy: TensorInfo },
        attrs as unknown as ConvGradAttrs & { filterShape: Shape4 },
        backend as KernelBackend,
      ),
  });
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: BACKEND,
    kernelFunc: ({ inputs, attrs, backend }) =>
      conv2dBackpropInput(
        tf,
        inputs as { dy: TensorInfo; filter: TensorInfo },
        attrs as unknown as ConvGradAttrs & { inputShape: Shape4 },
        backend as KernelBackend,
      ),
  });
  const ownIdentity = tf.getKernel('Identity', BACKEND);
  if (ownIdentity !== undefined) {
    tf.unregisterKernel('Identity', BACKEND);
    tf.registerKernel({ kernelName: 'Identity', backendName: BACKEND, kernelFunc: (args) => identityByReference(ownIdentity, args) });
  }
  const ownMaxPoolGrad = tf.getKernel('MaxPoolGrad', BACKEND);
  if (ownMaxPoolGrad !== undefined) {
    tf.unregisterKernel('MaxPoolGrad', BACKEND);
    tf.registerKernel({ kernelName: 'MaxPoolGrad', backendName: BACKEND, kernelFunc: (args) => maxPoolGrad(tf, ownMaxPoolGrad, args) });
  }
  tf.unregisterKernel('Tile', BACKEND);
  tf.registerKernel({
    kernelName: 'Tile',
    backendName: BACKEND,
    kernelFunc: ({ inputs, attrs, backend }) =>
      tileByBlocks(inputs as { x: TensorInfo }, attrs as unknown as { reps: number[] }, backend as KernelBackend),
  });
  registered = true;
}

// The U-Net used for Carvana (2D, RGB → 1 sigmoid channel) and BraTS (2D slices or 3D patches, 4 modalities →
// 4 softmax classes): one builder, 2D or 3D by the rank of the input shape.
// Layer names are stable and meaningful (enc1_conv1, enc1_bn1, bottleneck_conv1, dec2_up, dec2_conv1, head)
// because pretrained weights are matched by layer name; weights are drawn from lib/rng.ts so the same seed
// gives bit-identical initial weights on every backend.
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { Rng, seedFromString } from '../rng.js';
import { getLayers, getTf } from './backend.js';

export interface UNetOptions {
  /** [height, width, channels] (2D) or [depth, height, width, channels] (3D); spatial sizes divisible by 2^depth. */
  inputShape: number[];
  /** 1 → one sigmoid channel (binary); >1 → softmax over that many classes. */
  classes: number;
  /** Filters of the first level; each deeper level doubles them (bottleneck: filters·2^depth). */
  filters: number;
  /** Number of 2x down-samplings (encoder levels). */
  depth: number;
  batchNorm: boolean;
  /** Dropout rate after the bottleneck (0 or absent: none). */
  dropout?: number;
  seed: number;
}

/** The metadata flow keeps in model.json's `userDefinedMetadata.flow`. */
export type UNetArch = 'unet2d' | 'unet3d';

export interface FlowModelMetadata {
  arch: UNetArch;
  options: UNetOptions;
  /** Layers marked non-trainable (e.g. the encoder when freeze_encoder is set); train must respect it. */
  frozenLayers: string[];
}

/**
 * Checks that a spatial input size ([H, W] or [D, H, W]) fits the U-Net: every size positive and divisible by
 * 2^depth. Returns null when it fits, else a message naming `paramName`.
 */
export function validateUNetInput(
  inputSize: readonly number[],
  depth: number,
  paramName = 'input_size',
): string | null {
  if (!Number.isInteger(depth) || depth < 1) return `depth must be an integer ≥ 1 (got ${depth})`;
  const factor = 2 ** depth;
  const bad = inputSize.filter((size) => !Number.isInteger(size) || size <= 0 || size % factor !== 0);
  if (inputSize.length < 2 || inputSize.length > 3 || bad.length > 0) {
    const fix = inputSize.map((size) => Math.max(factor, Math.round(size / factor) * factor));
    return (
      `${paramName} [${inputSize.join(', ')}] must be two (2D) or three (3D) positive integers divisible by 2^depth = ${factor} ` +
      `(depth ${depth} halves the size ${depth} times); e.g. use ${paramName}: [${fix.join(', ')}] or a smaller depth`
    );
  }
  return null;
}

/** unet2d for [H, W, C] inputs, unet3d for [D, H, W, C]. */
export function archForInputShape(inputShape: readonly number[]): UNetArch {
  if (inputShape.length === 3) return 'unet2d';
  if (inputShape.length === 4) return 'unet3d';
  throw new Error(`a U-Net input is [H, W, C] or [D, H, W, C], got [${inputShape.join(', ')}]`);
}

/** Glorot/He-uniform weights drawn from our seeded Rng (not tfjs's global random state). */
function uniformArray(count: number, limit: number, rng: Rng): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = rng.uniform(-limit, limit);
  return values;
}

export function buildUNet(options: UNetOptions): LayersModel {
  const { inputShape, classes, filters, depth, batchNorm, seed } = options;
  const dropout = options.dropout ?? 0;
  const arch = archForInputShape(inputShape);
  const problem = validateUNetInput(inputShape.slice(0, -1), depth, 'inputShape');
  if (problem !== null) throw new Error(problem);
  if (!Number.isInteger(classes) || classes < 1) throw new Error(`classes must be an integer ≥ 1 (got ${classes})`);
  if (!Number.isInteger(filters) || filters < 1) throw new Error(`filters must be an integer ≥ 1 (got ${filters})`);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`dropout must be in [0, 1) (got ${dropout})`);
  if (arch === 'unet3d' && batchNorm) {
    // tfjs-layers 4.22's BatchNormalization throws "not implemented for array of rank 5" when training.
    throw new Error('batch_norm is not available for unet3d (tfjs-layers cannot train batch normalisation on 3D feature maps): set batch_norm: false');
  }
  const tfl = getLayers();
  const tf = getTf();
  const is3d = arch === 'unet3d';
  // The same graph in 2D or 3D: only the layer kinds differ (kernel 3, pool 2, up-convolution 2 per axis).
  const conv = is3d ? tfl.layers.conv3d : tfl.layers.conv2d;
  const pool = is3d ? tfl.layers.maxPooling3d : tfl.layers.maxPooling2d;
  const upConv = is3d ? tfl.layers.conv3dTranspose : tfl.layers.conv2dTranspose;

  const convBlock = (input: SymbolicTensor, prefix: string, width: number): SymbolicTensor => {
    let x = input;
    for (const i of [1, 2]) {
      x = conv({
          name: `${prefix}_conv${i}`,
          filters: width,
          kernelSize: 3,
          padding: 'same',
          useBias: !batchNorm, // BN's beta replaces the bias
          kernelInitializer: 'zeros',
        })
        .apply(x) as SymbolicTensor;
      if (batchNorm) x = tfl.layers.batchNormalization({ name: `${prefix}_bn${i}`, axis: -1 }).apply(x) as SymbolicTensor;
      x = tfl.layers.activation({ name: `${prefix}_relu${i}`, activation: 'relu' }).apply(x) as SymbolicTensor;
    }
    return x;
  };

  const input = tfl.input({ name: 'input', shape: inputShape });
  const skips: SymbolicTensor[] = [];
  let x: SymbolicTensor = input;
  for (let level = 1; level <= depth; level++) {
    x = convBlock(x, `enc${level}`, filters * 2 ** (level - 1));
    skips.push(x);
    x = pool({ name: `enc${level}_pool`, poolSize: 2, strides: 2 }).apply(x) as SymbolicTensor;
  }
  x = convBlock(x, 'bottleneck', filters * 2 ** depth);
  if (dropout > 0) {
    // A fixed seed keeps training reproducible (exact resume); tfjs then reuses one mask per call site.
    x = tfl.layers
      .dropout({ name: 'bottleneck_dropout', rate: dropout, seed: seedFromString('bottleneck_dropout', seed) })
      .apply(x) as SymbolicTensor;
  }
  for (let level = depth; level >= 1; level--) {
    const width = filters * 2 ** (level - 1);
    x = upConv({
        name: `dec${level}_up`,
        filters: width,
        kernelSize: 2,
        strides: 2,
        padding: 'same',
        kernelInitializer: 'zeros',
      })
      .apply(x) as SymbolicTensor;
    x = tfl.layers.concatenate({ name: `dec${level}_concat`, axis: -1 }).apply([x, skips[level - 1]!]) as SymbolicTensor;
    x = convBlock(x, `dec${level}`, width);
  }
  const output = conv({
      name: 'head',
      filters: classes,
      kernelSize: 1,
      activation: classes === 1 ? 'sigmoid' : 'softmax',
      kernelInitializer: 'zeros',
    })
    .apply(x) as SymbolicTensor;
  const model = tfl.model({ name: arch, inputs: input, outputs: output });

  // Deterministic initialisation: every kernel from its own Rng stream seeded by (seed, layer name), so adding
  // or removing one layer does not shift the weights of the others. He-uniform for ReLU convs, Glorot for the head.
  for (const layer of model.layers) {
    const kernel = layer.weights.find((w) => w.originalName.endsWith('/kernel'));
    if (kernel === undefined) continue;
    const shape = kernel.shape as number[];
    const rank = shape.length;
    const receptive = shape.slice(0, rank - 2).reduce((a, b) => a * b, 1);
    // Conv kernels are [k.., in, out]; transposed-conv kernels are [k.., out, in].
    const transposed = layer.getClassName().endsWith('Transpose');
    const fanIn = receptive * (transposed ? shape[rank - 1]! : shape[rank - 2]!);
    const fanOut = receptive * (transposed ? shape[rank - 2]! : shape[rank - 1]!);
    const limit = layer.name === 'head' ? Math.sqrt(6 / (fanIn + fanOut)) : Math.sqrt(6 / fanIn);
    const rng = new Rng(seedFromString(layer.name, seed));
    const values = tf.tensor(uniformArray(shape.reduce((a, b) => a * b, 1), limit, rng), shape);
    kernel.write(values); // the variable takes its own reference to the data
    values.dispose();
  }
  const metadata: FlowModelMetadata = {
    arch,
    options: { ...options, dropout },
    frozenLayers: [],
  };
  model.setUserDefinedMetadata({ flow: metadata as unknown as object });
  return model;
}

/** Names of the encoder layers (enc1_*, enc2_*, …) that `freeze_encoder` makes non-trainable. */
export function encoderLayerNames(model: LayersModel): string[] {
  return model.layers.filter((layer) => /^enc\d+_/.test(layer.name)).map((layer) => layer.name);
}

/** Marks the encoder non-trainable and records it in the model's flow metadata (saved in model.json). */
export function freezeEncoder(model: LayersModel): string[] {
  const names = encoderLayerNames(model);
  for (const layer of model.layers) if (names.includes(layer.name)) layer.trainable = false;
  const userMeta = (model.getUserDefinedMetadata() ?? {}) as { flow?: FlowModelMetadata };
  if (userMeta.flow !== undefined) {
    userMeta.flow.frozenLayers = names;
    model.setUserDefinedMetadata(userMeta);
  }
  return names;
}

/** flow's metadata from a model built by buildUNet (or loaded from its saved folder), if present. */
export function getFlowMetadata(model: LayersModel): FlowModelMetadata | null {
  const userMeta = model.getUserDefinedMetadata() as { flow?: FlowModelMetadata } | undefined;
  return userMeta?.flow ?? null;
}

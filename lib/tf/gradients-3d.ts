// The gradient tfjs-core lacks for training a 3D U-Net: Conv3DBackpropInputV2 (the kernel behind conv3dTranspose,
// the decoder's up-convolution) has no registered gradient, so backprop through a Conv3DTranspose layer throws.
// A transposed convolution is the adjoint of a convolution, so its gradients are the convolution itself (for
// its input) and the convolution's filter gradient with the roles of input and upstream gradient swapped — the
// same rule tfjs-core registers for the 2D Conv2DBackpropInput. Registered in tfjs-core's gradient registry,
// it serves every backend.
import type { Tensor, Tensor5D } from '@tensorflow/tfjs-core';

type Tf = typeof import('@tensorflow/tfjs-core');

interface Conv3dTransposeAttrs {
  strides: [number, number, number] | number;
  pad: 'valid' | 'same';
}

const KERNEL = 'Conv3DBackpropInputV2';

/** Registers the Conv3DBackpropInputV2 gradient unless tfjs-core (a later version) already has one. */
export function registerConv3dTransposeGradient(tf: Tf): void {
  if (tf.getGradient(KERNEL) !== undefined) return;
  tf.registerGradient({
    kernelName: KERNEL,
    inputsToSave: ['dy', 'filter'],
    gradFunc: (upstream, saved, attrs) => {
      const [dy, filter] = saved as [Tensor5D, Tensor5D];
      const { strides, pad } = attrs as unknown as Conv3dTransposeAttrs;
      const gradient = (Array.isArray(upstream) ? upstream[0]! : upstream) as Tensor5D;
      return {
        // The forward's `dy` input is the transposed conv's data input: its gradient is the plain convolution.
        dy: () => tf.conv3d(gradient, filter, strides, pad),
        filter: () =>
          tf.engine().runKernel('Conv3DBackpropFilterV2', { x: gradient, dy }, { strides, pad, filterShape: filter.shape }) as Tensor,
      };
    },
  });
}

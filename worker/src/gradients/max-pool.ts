/**
 * MaxPool's gradient. On the tensorflow backend, for pools whose windows tile the input (filter =
 * stride, 'valid', no dilation: Conv4's 2×2/2), the first-maximum mask kernels of
 * ../kernels/tensorflow/max-pool-mask.ts (bitwise TensorFlow's MaxPoolGrad, without its scalar
 * arg-max loop); otherwise upstream's MaxPoolGrad kernel (whose own gradient is ./max-pool-grad.ts).
 * The two mask kernels are adjoint linear maps in their tensor input, so each is the other's
 * gradient; x and y are attributes (constants to a tape: the gradient is piecewise constant in
 * them).
 */
import * as tf from '@tensorflow/tfjs-core';
import { MAX_POOL_GATHER_MASK, MAX_POOL_GRAD_MASK, type MaxPoolMaskAttrs } from '../kernels/tensorflow/max-pool-mask.js';
import { hasKernel, runNative } from './native-kernels.js';
import { savedAt, single } from './util.js';

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/** The mask kernels' attributes when they apply to this pool on the active backend, else undefined. */
function maskAttrs(x: tf.Tensor, y: tf.Tensor, attrs: tf.MaxPoolAttrs): MaxPoolMaskAttrs | undefined {
  if (!hasKernel(MAX_POOL_GRAD_MASK) || x.rank !== 4 || x.dtype !== 'float32') return undefined;
  const [fh, fw] = pair(attrs.filterSize);
  const [sh, sw] = pair(attrs.strides);
  if (fh !== sh || fw !== sw || attrs.pad !== 'valid') return undefined;
  return { x, y, fh, fw };
}

export const maxPoolGradConfig: tf.GradConfig = {
  kernelName: tf.MaxPool,
  inputsToSave: ['x'],
  outputsToSave: [true],
  gradFunc: (dyIn, saved, attrs) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.MaxPool);
    const y = savedAt(saved, 1, tf.MaxPool);
    const a = attrs as unknown as tf.MaxPoolAttrs;
    const mask = maskAttrs(x, y, a);
    return {
      x: () =>
        mask
          ? runNative(MAX_POOL_GRAD_MASK, { dy }, mask)
          : runNative(tf.MaxPoolGrad, { dy, input: x, output: y }, { filterSize: a.filterSize, strides: a.strides, pad: a.pad, dimRoundingMode: a.dimRoundingMode }),
    };
  },
};

export const maxPoolGradMaskGradConfig: tf.GradConfig = {
  kernelName: MAX_POOL_GRAD_MASK,
  gradFunc: (ddx, _saved, attrs) => ({ dy: () => runNative(MAX_POOL_GATHER_MASK, { ddx: single(ddx) }, attrs) }),
};

export const maxPoolGatherMaskGradConfig: tf.GradConfig = {
  kernelName: MAX_POOL_GATHER_MASK,
  gradFunc: (g, _saved, attrs) => ({ ddx: () => runNative(MAX_POOL_GRAD_MASK, { dy: single(g) }, attrs) }),
};

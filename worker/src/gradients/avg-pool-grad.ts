/**
 * Gradient of AvgPoolGrad (dx = dy spread evenly over each window), which TF.js 4.22 does not
 * register. dx is linear in dy and independent of x, so ∂/∂x = 0 and ∂/∂dy is the adjoint: each
 * output sums ddx over its window and divides by what the kernel divided by. That is avgPool(ddx)
 * for 'valid' padding, and for 'same' padding on the TensorFlow backend (whose AvgPoolGrad divides by
 * the in-bounds pixels, like every forward avgPool); the cpu/wasm/webgl AvgPoolGrad kernels divide by
 * the full window even at the border, so there the adjoint zero-pads ddx and average-pools it 'valid'.
 */
import * as tf from '@tensorflow/tfjs-core';
import { avgPoolGradDivisor, padForPool, poolGeometry, savedAt, single } from './util.js';

export const avgPoolGradGradConfig: tf.GradConfig = {
  kernelName: tf.AvgPoolGrad,
  inputsToSave: ['input'],
  gradFunc: (ddxIn, saved, attrs) => {
    const ddx = single(ddxIn) as tf.Tensor4D;
    const x = savedAt(saved, 0, tf.AvgPoolGrad) as tf.Tensor4D;
    const { filterSize, strides, pad } = attrs as unknown as tf.AvgPoolGradAttrs;
    return {
      dy: () => {
        const g = poolGeometry(x.shape, filterSize, strides, pad);
        if (avgPoolGradDivisor() === 'in-bounds') return tf.avgPool(ddx, filterSize, strides, pad);
        const padded = padForPool(ddx, g, 0);
        return tf.avgPool(padded, [g.fH, g.fW], [g.sH, g.sW], 'valid');
      },
      input: () => tf.zerosLike(x),
    };
  },
};

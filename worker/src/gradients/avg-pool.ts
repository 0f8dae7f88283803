/**
 * AvgPool's gradient, re-registered. The forward kernels of TF.js 4.22 divide each window's sum by
 * the number of in-bounds pixels, but the AvgPoolGrad kernels of the cpu, wasm and webgl backends
 * divide by the full window size, so with 'same' padding the first-order gradient is wrong at the
 * border (measured on cpu: up to 2× off against finite differences; the TensorFlow backend is right).
 * On such backends this version rescales dy by full/in-bounds counts before AvgPoolGrad, which makes
 * it exact; with 'valid' padding, or on TensorFlow, it is upstream's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { avgPoolGradDivisor, padForPool, poolGeometry, runKernel, savedAt, single } from './util.js';

export const avgPoolGradConfig: tf.GradConfig = {
  kernelName: tf.AvgPool,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved, attrs) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.AvgPool) as tf.Tensor4D;
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.AvgPoolAttrs;
    return {
      x: () => {
        const g = poolGeometry(x.shape, filterSize, strides, pad, dimRoundingMode);
        let scaled = dy;
        const padded = g.top > 0 || g.left > 0 || g.bottom > 0 || g.right > 0;
        if (padded && avgPoolGradDivisor() === 'full-window') {
          // fraction of each window that is in bounds, from the input's shape only
          const inBounds = tf.avgPool(padForPool(tf.ones(x.shape), g, 0), [g.fH, g.fW], [g.sH, g.sW], 'valid');
          scaled = tf.div(dy, inBounds);
        }
        return runKernel(tf.AvgPoolGrad, { dy: scaled, input: x }, { filterSize, strides, pad });
      },
    };
  },
};

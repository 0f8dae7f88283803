/**
 * AvgPool's gradient, re-registered. The forward kernels of TF.js 4.22 divide each window's sum by
 * the number of in-bounds pixels, but the upstream gradient (AvgPoolGrad) always divides by the full
 * window size, so with 'same' padding the first-order gradient is wrong at the border (measured:
 * up to 2× off against finite differences). This version rescales dy by full/in-bounds counts before
 * AvgPoolGrad, which makes it exact; with 'valid' padding the scale is 1 and it is upstream's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { padForPool, poolGeometry, runKernel, savedAt, single } from './util.js';

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
        if (g.top > 0 || g.left > 0 || g.bottom > 0 || g.right > 0) {
          // fraction of each window that is in bounds, from the input's shape only
          const inBounds = tf.avgPool(padForPool(tf.ones(x.shape), g, 0), [g.fH, g.fW], [g.sH, g.sW], 'valid');
          scaled = tf.div(dy, inBounds);
        }
        return runKernel(tf.AvgPoolGrad, { dy: scaled, input: x }, { filterSize, strides, pad } as unknown as tf.NamedAttrMap);
      },
    };
  },
};

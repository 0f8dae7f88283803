/**
 * Gradient of Conv2DBackpropFilter (dW = x ⋆ dy), which TF.js 4.22 does not register: without it the
 * second-order MAML meta-gradient through any conv layer throws "gradient function not found".
 * dW is bilinear in (x, dy): with ddw the upstream gradient w.r.t. dW,
 *   ∂/∂x  = Conv2DBackpropInput(dy, ddw)   ∂/∂dy = conv2d(x, ddw)   (same strides and padding).
 */
import * as tf from '@tensorflow/tfjs-core';
import { runKernel, savedAt, single } from './util.js';

export const conv2dBackpropFilterGradConfig: tf.GradConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  inputsToSave: ['x', 'dy'],
  gradFunc: (ddwIn, saved, attrs) => {
    const ddw = single(ddwIn) as tf.Tensor4D;
    const x = savedAt(saved, 0, tf.Conv2DBackpropFilter) as tf.Tensor4D;
    const dy = savedAt(saved, 1, tf.Conv2DBackpropFilter) as tf.Tensor4D;
    const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    return {
      x: () =>
        runKernel(
          tf.Conv2DBackpropInput,
          { dy, filter: ddw },
          { strides, pad, dataFormat, dimRoundingMode, inputShape: x.shape } as unknown as tf.NamedAttrMap,
        ),
      dy: () =>
        runKernel(
          tf.Conv2D,
          { x, filter: ddw },
          { strides, pad, dataFormat, dilations: [1, 1], dimRoundingMode } as unknown as tf.NamedAttrMap,
        ),
    };
  },
};

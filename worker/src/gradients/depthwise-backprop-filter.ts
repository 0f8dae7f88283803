/**
 * Gradient of DepthwiseConv2dNativeBackpropFilter (dW from x and dy), which TF.js 4.22 does not
 * register. dW is bilinear in (x, dy): with ddw the upstream gradient w.r.t. dW,
 *   ∂/∂x = DepthwiseConv2dNativeBackpropInput(dy, ddw)   ∂/∂dy = depthwiseConv2d(x, ddw).
 */
import * as tf from '@tensorflow/tfjs-core';
import { runKernel, savedAt, single } from './util.js';

export const depthwiseBackpropFilterGradConfig: tf.GradConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  inputsToSave: ['x', 'dy'],
  gradFunc: (ddwIn, saved, attrs) => {
    const ddw = single(ddwIn);
    const x = savedAt(saved, 0, tf.DepthwiseConv2dNativeBackpropFilter);
    const dy = savedAt(saved, 1, tf.DepthwiseConv2dNativeBackpropFilter);
    const { strides, dilations, pad, dimRoundingMode } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
    return {
      x: () =>
        runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter: ddw }, {
          strides,
          dilations,
          pad,
          dimRoundingMode,
          inputShape: x.shape,
        } as unknown as tf.NamedAttrMap),
      dy: () =>
        runKernel(tf.DepthwiseConv2dNative, { x, filter: ddw }, {
          strides,
          pad,
          dataFormat: 'NHWC',
          dilations,
          dimRoundingMode,
        } as unknown as tf.NamedAttrMap),
    };
  },
};

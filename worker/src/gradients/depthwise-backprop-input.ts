/**
 * Gradient of DepthwiseConv2dNativeBackpropInput (dx from dy and the depthwise filter), which TF.js
 * 4.22 does not register. dx is bilinear in (dy, filter): with ddx the upstream gradient w.r.t. dx,
 *   ∂/∂dy = depthwiseConv2d(ddx, filter)   ∂/∂filter = DepthwiseConv2dNativeBackpropFilter(ddx, dy).
 */
import * as tf from '@tensorflow/tfjs-core';
import { runKernel, savedAt, single } from './util.js';

export const depthwiseBackpropInputGradConfig: tf.GradConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  inputsToSave: ['dy', 'filter'],
  gradFunc: (ddxIn, saved, attrs) => {
    const ddx = single(ddxIn);
    const dy = savedAt(saved, 0, tf.DepthwiseConv2dNativeBackpropInput);
    const filter = savedAt(saved, 1, tf.DepthwiseConv2dNativeBackpropInput);
    const { strides, dilations, pad, dimRoundingMode } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
    return {
      dy: () =>
        runKernel(tf.DepthwiseConv2dNative, { x: ddx, filter }, {
          strides,
          pad,
          dataFormat: 'NHWC',
          dilations,
          dimRoundingMode,
        } as unknown as tf.NamedAttrMap),
      filter: () =>
        runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: ddx, dy }, {
          strides,
          dilations,
          pad,
          dimRoundingMode,
          filterShape: filter.shape,
        } as unknown as tf.NamedAttrMap),
    };
  },
};

/**
 * LeakyReLU's gradient: on the tensorflow backend one LeakyReluGrad kernel
 * (../kernels/tensorflow/leaky-relu-grad.ts), the same values as upstream's
 * where(greater(x, 0), dy, mul(dy, α)), which runs everywhere else unchanged. Its own gradient
 * (second order) is LeakyReluGrad of the upstream gradient at the same x: linear in dy, piecewise
 * constant in x.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LEAKY_RELU_GRAD, type LeakyReluGradAttrs } from '../kernels/tensorflow/leaky-relu-grad.js';
import { hasKernel, runNative } from './native-kernels.js';
import { savedAt, single } from './util.js';

export const leakyReluGradConfig: tf.GradConfig = {
  kernelName: tf.LeakyRelu,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved, attrs) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.LeakyRelu);
    const { alpha } = attrs as unknown as tf.LeakyReluAttrs;
    return { x: () => (hasKernel(LEAKY_RELU_GRAD) && x.dtype === 'float32' ? runNative(LEAKY_RELU_GRAD, { dy }, { x, alpha }) : tf.where(tf.greater(x, 0), dy, tf.mul(dy, alpha))) };
  },
};

export const leakyReluGradGradConfig: tf.GradConfig = {
  kernelName: LEAKY_RELU_GRAD,
  gradFunc: (ddx, _saved, attrs) => {
    const { x, alpha } = attrs as unknown as LeakyReluGradAttrs & { x: tf.Tensor };
    return { dy: () => runNative(LEAKY_RELU_GRAD, { dy: single(ddx) }, { x, alpha }) };
  },
};

/**
 * ReLU's gradient: on the tensorflow backend one ReluGrad kernel (../kernels/tensorflow/relu-grad.ts)
 * instead of tfjs-node's seven-op Step and a multiply, the same values; elsewhere upstream's
 * mul(dy, cast(step(x))) unchanged. ReluGrad's own gradient (second order) is ReluGrad of the
 * upstream gradient at the same x: dx = dy · [x > 0] is linear in dy and piecewise constant in x.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RELU_GRAD } from '../kernels/tensorflow/relu-grad.js';
import { hasKernel, runNative } from './native-kernels.js';
import { savedAt, single } from './util.js';

export const reluGradConfig: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.Relu);
    return { x: () => (hasKernel(RELU_GRAD) ? runNative(RELU_GRAD, { dy }, { x }) : tf.mul(dy, tf.cast(tf.step(x), 'float32'))) };
  },
};

export const reluGradGradConfig: tf.GradConfig = {
  kernelName: RELU_GRAD,
  gradFunc: (ddx, _saved, attrs) => ({ dy: () => runNative(RELU_GRAD, { dy: single(ddx) }, { x: (attrs as unknown as { x: tf.Tensor }).x }) }),
};

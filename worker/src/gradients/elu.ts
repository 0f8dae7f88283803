/**
 * Elu's gradient, re-registered. Upstream computes it from the saved OUTPUT y (EluGrad(dy, y)); TF.js
 * records the copy of a saved output on the tape before the node that produces it, so inside nested
 * `tf.grads` the path through y is pruned and the second derivative is lost. This version uses the
 * saved INPUT: dx = dy · exp(min(x, 0)), which is 1 for x > 0 and e^x below, as differentiable ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { savedAt, single } from './util.js';

export const eluGradConfig: tf.GradConfig = {
  kernelName: tf.Elu,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.Elu);
    return { x: () => tf.mul(dy, tf.exp(tf.minimum(x, 0))) };
  },
};

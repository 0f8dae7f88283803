/**
 * Sigmoid's gradient, re-registered from the saved input: dx = dy · s(x) · (1 − s(x)). Upstream uses
 * the saved OUTPUT, whose tape copy is pruned inside nested `tf.grads`, dropping the second-order term.
 */
import * as tf from '@tensorflow/tfjs-core';
import { savedAt, single } from './util.js';

export const sigmoidGradConfig: tf.GradConfig = {
  kernelName: tf.Sigmoid,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.Sigmoid);
    return {
      x: () => {
        const s = tf.sigmoid(x);
        return tf.mul(dy, tf.mul(s, tf.sub(1, s)));
      },
    };
  },
};

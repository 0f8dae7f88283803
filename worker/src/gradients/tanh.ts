/**
 * Tanh's gradient, re-registered from the saved input: dx = dy · (1 − tanh(x)²). Upstream uses the
 * saved OUTPUT, whose tape copy is pruned inside nested `tf.grads`, dropping the second-order term.
 */
import * as tf from '@tensorflow/tfjs-core';
import { savedAt, single } from './util.js';

export const tanhGradConfig: tf.GradConfig = {
  kernelName: tf.Tanh,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.Tanh);
    return { x: () => tf.mul(dy, tf.sub(1, tf.square(tf.tanh(x)))) };
  },
};

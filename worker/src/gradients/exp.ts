/**
 * Exp's gradient, re-registered from the saved input: dx = dy · exp(x). Upstream multiplies by the
 * saved OUTPUT, whose tape copy is pruned inside nested `tf.grads` (the second-order term is dropped:
 * d²/dx² Σ exp(x)² comes out half its value, and grad(grad(exp)) throws).
 */
import * as tf from '@tensorflow/tfjs-core';
import { savedAt, single } from './util.js';

export const expGradConfig: tf.GradConfig = {
  kernelName: tf.Exp,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const x = savedAt(saved, 0, tf.Exp);
    return { x: () => tf.mul(dy, tf.exp(tf.cast(x, 'float32'))) };
  },
};

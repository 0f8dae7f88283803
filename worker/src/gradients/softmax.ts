/**
 * Softmax's gradient, re-registered from the saved input logits: with s = softmax(x),
 * dx = s · dy − s · Σ(s · dy). Upstream uses the saved OUTPUT s, whose tape copy is pruned inside
 * nested `tf.grads`, dropping the second-order term.
 */
import * as tf from '@tensorflow/tfjs-core';
import { savedAt, single } from './util.js';

export const softmaxGradConfig: tf.GradConfig = {
  kernelName: tf.Softmax,
  inputsToSave: ['logits'],
  gradFunc: (dyIn, saved, attrs) => {
    const dy = single(dyIn);
    const logits = savedAt(saved, 0, tf.Softmax);
    const { dim } = attrs as unknown as tf.SoftmaxAttrs;
    const axis = dim < 0 ? logits.rank + dim : dim;
    return {
      logits: () => {
        const s = tf.softmax(logits, axis);
        const sdy = tf.mul(s, dy);
        return tf.sub(sdy, tf.mul(s, tf.sum(sdy, axis, true)));
      },
    };
  },
};

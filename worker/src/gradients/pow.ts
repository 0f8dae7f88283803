/**
 * Pow's gradient, re-registered from the saved inputs. Upstream computes ∂/∂b = dy · y · log(a) from
 * the saved OUTPUT y, whose tape copy is pruned inside nested `tf.grads`; here y = pow(a, b) is
 * recomputed. ∂/∂a = dy · b · a^(b−1) as upstream. Both reduce over broadcast axes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { savedAt, single } from './util.js';

function unbroadcast(g: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, outShape);
  const reduced = axes.length > 0 ? tf.sum(g, axes) : g;
  return tf.reshape(reduced, shape);
}

export const powGradConfig: tf.GradConfig = {
  kernelName: tf.Pow,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const a = savedAt(saved, 0, tf.Pow);
    const b = savedAt(saved, 1, tf.Pow);
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    return {
      a: () => {
        const bf = tf.cast(b, 'float32');
        return unbroadcast(tf.mul(dy, tf.mul(bf, tf.pow(a, tf.sub(bf, 1)))), a.shape, outShape);
      },
      b: () => {
        const positive = tf.greater(a, 0);
        const logA = tf.where(positive, tf.log(tf.where(positive, a, tf.onesLike(a))), tf.zerosLike(a));
        return unbroadcast(tf.mul(dy, tf.mul(tf.pow(a, b), logA)), b.shape, outShape);
      },
    };
  },
};

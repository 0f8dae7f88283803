/**
 * Losses built only from primitive ops whose registered gradients are themselves differentiable (see
 * ./gradients/register.ts), so every loss here is exactly twice differentiable: second-order MAML
 * through them is real MAML. TF.js's own `tf.losses.softmaxCrossEntropy`, `tf.logSoftmax` and
 * `tf.logSigmoid` are `customGrad` ops, whose gradients are constants to an outer tape (measured:
 * MAML with them silently computes a FOMAML-like value).
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * log Σ exp(x) along `axis`, shifted by the max for stability: m + log Σ exp(x − m). The max is an
 * ordinary differentiable op: its gradient path cancels analytically (∂/∂m = 1 − Σ softmax = 0), and
 * its own gradient (a mask from Equal) has a registered zero gradient, so nothing stops a second pass.
 */
export function logSumExp(x: tf.Tensor, axis = -1, keepDims = false): tf.Tensor {
  const m = tf.max(x, axis, true);
  const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(x, m)), axis, true)));
  return keepDims ? lse : tf.squeeze(lse, [axis < 0 ? x.rank + axis : axis]);
}

/** log softmax(x) along the last axis: x − logSumExp(x). */
export function logSoftmax(logits: tf.Tensor): tf.Tensor {
  return tf.sub(logits, logSumExp(logits, -1, true));
}

/**
 * Mean over examples of −Σ_c target_c · log softmax(logits)_c. Targets are one-hot (or any
 * distribution) rows of the logits' shape [N, C].
 */
export function softmaxCrossEntropy(logits: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(target, logSoftmax(logits)), -1))) as tf.Scalar;
}

/** Fraction of rows whose arg-max logit is the target's arg-max (not differentiable; metrics only). */
export function accuracy(logits: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.mean<tf.Scalar>(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(target, -1)), 'float32'));
}

/** Mean squared error over all elements. */
export function mse(pred: tf.Tensor, target: tf.Tensor): tf.Scalar {
  return tf.mean<tf.Scalar>(tf.squaredDifference(pred, target));
}

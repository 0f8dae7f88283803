/**
 * Training-mode batch norm (transductive, as MAML uses it): statistics of the batch it is given,
 * over every axis but the last (channels), then scale and offset per channel. Exactly twice
 * differentiable on every backend.
 *
 * On the tensorflow backend (TensorFlow on a CPU) one fused kernel (FusedBatchNormV3) with a
 * one-kernel gradient (FusedBatchNormGradV3) and a closed-form second derivative
 * (../gradients/batch-norm.ts, batch-norm-grad.ts); elsewhere the composite of tfjs ops below,
 * unchanged. The two agree to float32 rounding (TensorFlow's fused kernel sums, divides and takes
 * the reciprocal square root in its own order), not bitwise: a run's θ on the tensorflow backend
 * differs from what the composite gave there before (docs/compute.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BATCH_NORM } from '../kernels/tensorflow/batch-norm.js';
import { hasKernel, runNativeMulti } from '../gradients/native-kernels.js';

/** The composite: moments, then (x − mean) / sqrt(variance + ε) · scale + offset. */
export function batchNormComposite<T extends tf.Tensor>(x: T, scale: tf.Tensor, offset: tf.Tensor, epsilon: number): T {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes, true);
  const normed = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon)));
  return tf.add<T>(tf.mul(normed, scale), offset);
}

/** Batch norm with the batch's own statistics (fused where the backend has the kernel). */
export function batchNormTraining<T extends tf.Tensor>(x: T, scale: tf.Tensor, offset: tf.Tensor, epsilon: number): T {
  if (x.dtype === 'float32' && scale.rank === 1 && offset.rank === 1 && hasKernel(BATCH_NORM)) {
    return runNativeMulti(BATCH_NORM, { x, scale, offset }, { epsilon })[0] as T;
  }
  return batchNormComposite(x, scale, offset, epsilon);
}

/**
 * Training-mode batch norm (transductive, as MAML uses it): statistics of the batch it is given,
 * over every axis but the last (channels), then scale and offset per channel. Exactly twice
 * differentiable on every backend. The BatchNormalization layer's per-task forward
 * (shared/src/model/layers/batch-normalization.ts) as a worker op, for tests and reference models.
 *
 * On the tensorflow backend (TensorFlow on a CPU) one fused kernel (FusedBatchNormV3) with a
 * one-kernel gradient (FusedBatchNormGradV3) and a closed-form second derivative
 * (../gradients/batch-norm.ts, batch-norm-grad.ts); elsewhere the composite of tfjs ops,
 * unchanged. The two agree to float32 rounding (TensorFlow's fused kernel sums, divides and takes
 * the reciprocal square root in its own order), not bitwise: a run's θ on the tensorflow backend
 * differs from what the composite gave there before (docs/compute.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedBatchNorm, normalizeComposite } from '@metaloop/shared';

const channelAxesOf = (x: tf.Tensor) => Array.from({ length: x.rank - 1 }, (_, i) => i);

/** The composite: moments, then (x − mean) / sqrt(variance + ε) · scale + offset. */
export function batchNormComposite<T extends tf.Tensor>(x: T, scale: tf.Tensor, offset: tf.Tensor, epsilon: number): T {
  return normalizeComposite(tf, x, channelAxesOf(x), epsilon, scale, offset) as T;
}

/** Batch norm with the batch's own statistics (fused where the backend has the kernel). */
export function batchNormTraining<T extends tf.Tensor>(x: T, scale: tf.Tensor, offset: tf.Tensor, epsilon: number): T {
  return (fusedBatchNorm(tf, x, epsilon, scale, offset) ?? batchNormComposite(x, scale, offset, epsilon)) as T;
}

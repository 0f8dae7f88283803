/**
 * Loss functions by kind, built only from ops whose gradients are themselves differentiable (so
 * second-order MAML can differentiate through them). Targets are float: values (mse) or one-hot (xent).
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '../errors.js';
import type { LossKind } from '../tasks/types.js';

export type LossFn = (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar;

export interface Loss {
  readonly kind: LossKind;
  /** Mean over examples. */
  readonly fn: LossFn;
  /** Fraction of examples classified right (classification losses only). */
  readonly accuracy?: (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar;
}

export const LOSSES: Record<LossKind, Loss> = {
  mse: {
    kind: 'mse',
    fn: (pred, target) => tf.mean(tf.squaredDifference(pred, target)),
  },
  xent: {
    kind: 'xent',
    fn: (logits, onehot) =>
      tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.sub(logits, tf.logSumExp(logits, -1, true))), -1))) as tf.Scalar,
    accuracy: (logits, onehot) => tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(onehot, -1)), 'float32')),
  },
};

export function lossOf(kind: string): Loss {
  const loss = (LOSSES as Record<string, Loss | undefined>)[kind];
  if (!loss) throw new UnsupportedError('loss', kind, Object.keys(LOSSES));
  return loss;
}

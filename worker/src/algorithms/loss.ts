/**
 * Loss functions by kind (the TaskFamily's `loss`). The scalar functions live in ../losses.ts
 * (twice differentiable, so second-order MAML can differentiate through them); the per-task
 * variants below use the same primitives on task-batched predictions [T, N, C].
 */
import * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '../errors.js';
import { accuracy, logSoftmax, mse, softmaxCrossEntropy } from '../losses.js';
import type { LossKind } from '../tasks/types.js';

export type LossFn = (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar;
/** pred/target [T, N, ...] → loss of each task [T] (mean over that task's examples). */
export type PerTaskLossFn = (pred: tf.Tensor, target: tf.Tensor) => tf.Tensor1D;

export interface Loss {
  readonly kind: LossKind;
  /** Mean over examples. */
  readonly fn: LossFn;
  /** Task-batched variant of `fn`. */
  readonly perTask: PerTaskLossFn;
  /** Fraction of examples classified right (classification losses only). */
  readonly accuracy?: LossFn;
  readonly perTaskAccuracy?: PerTaskLossFn;
}

/** Every axis but the first (the task axis). */
const inner = (t: tf.Tensor) => Array.from({ length: t.rank - 1 }, (_, i) => i + 1);

export const LOSSES: Record<LossKind, Loss> = {
  mse: {
    kind: 'mse',
    fn: mse,
    perTask: (pred, target) => {
      const d = tf.squaredDifference(pred, target);
      return tf.mean<tf.Tensor1D>(d, inner(d));
    },
  },
  xent: {
    kind: 'xent',
    fn: softmaxCrossEntropy,
    perTask: (logits, target) => {
      const nll = tf.neg(tf.sum(tf.mul(target, logSoftmax(logits)), -1));
      return tf.mean<tf.Tensor1D>(nll, inner(nll));
    },
    accuracy,
    perTaskAccuracy: (logits, target) => {
      const hit = tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(target, -1)), 'float32');
      return tf.mean<tf.Tensor1D>(hit, inner(hit));
    },
  },
};

export function lossOf(kind: string): Loss {
  const loss = (LOSSES as Record<string, Loss | undefined>)[kind];
  if (!loss) throw new UnsupportedError('loss', kind, Object.keys(LOSSES));
  return loss;
}

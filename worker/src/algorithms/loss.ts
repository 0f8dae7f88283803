/**
 * Loss functions by kind (the TaskFamily's `loss`). The functions themselves live in ../losses.ts
 * (twice differentiable, so second-order MAML can differentiate through them).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { UnsupportedError } from '../errors.js';
import { accuracy, mse, softmaxCrossEntropy } from '../losses.js';
import type { LossKind } from '../tasks/types.js';

export type LossFn = (pred: tf.Tensor, target: tf.Tensor) => tf.Scalar;

export interface Loss {
  readonly kind: LossKind;
  /** Mean over examples. */
  readonly fn: LossFn;
  /** Fraction of examples classified right (classification losses only). */
  readonly accuracy?: LossFn;
}

export const LOSSES: Record<LossKind, Loss> = {
  mse: { kind: 'mse', fn: mse },
  xent: { kind: 'xent', fn: softmaxCrossEntropy, accuracy },
};

export function lossOf(kind: string): Loss {
  const loss = (LOSSES as Record<string, Loss | undefined>)[kind];
  if (!loss) throw new UnsupportedError('loss', kind, Object.keys(LOSSES));
  return loss;
}

import type * as tf from '@tensorflow/tfjs-core';
import type { RunSpec } from '@metaloop/shared';
import type { Model } from '../models/types.js';
import type { Loss } from './loss.js';

/** One task as tensors: support (xs, ys) to adapt on, query (xq, yq) to score. */
export interface TaskTensors {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
  readonly xq: tf.Tensor;
  readonly yq: tf.Tensor;
}

export interface InnerLoop {
  readonly model: Model;
  readonly loss: Loss;
  readonly innerSteps: number;
  readonly innerLr: number;
}

/** Per-task result of a training step; every tensor belongs to the caller's tf.tidy. */
export interface TaskMetaGradient {
  /** d(post-adaptation query loss)/dθ, one tensor per layout entry, in layout order. */
  readonly grads: tf.Tensor[];
  readonly preLoss: tf.Scalar;
  readonly postLoss: tf.Scalar;
}

export interface TaskEvaluation {
  /** Query loss after k = 0..steps inner steps. */
  readonly losses: tf.Scalar[];
  /** Query accuracy after k = 0..steps inner steps (classification losses only). */
  readonly accuracies?: tf.Scalar[];
}

/**
 * A meta-learning algorithm: how a task adapts θ and what meta-gradient it sends back.
 * Both methods are called inside a tf.tidy; `params` are θ in layout order and are not disposed.
 */
export interface Algorithm {
  readonly kind: string;
  metaGradient(inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors): TaskMetaGradient;
  evaluate(inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors, steps: number): TaskEvaluation;
}

export type AlgorithmFactory = (spec: RunSpec) => Algorithm;

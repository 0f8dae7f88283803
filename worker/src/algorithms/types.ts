import type * as tf from '@tensorflow/tfjs-core';
import type { RunSpec, TensorSpec } from '@metaloop/shared';
import type { Model } from '../model/model.js';
import type { Loss } from './loss.js';

/**
 * Task data as tensors: support (xs, ys) to adapt on, query (xq, yq) to score. Task-batched
 * (`InnerLoop.batched`): every tensor has a leading task dimension T.
 */
export interface TaskTensors {
  readonly xs: tf.Tensor;
  readonly ys: tf.Tensor;
  readonly xq: tf.Tensor;
  readonly yq: tf.Tensor;
}

export interface InnerLoop {
  readonly model: Model;
  readonly loss: Loss;
  /** θ's layout (`paramLayout(spec)`): the model's tensors, then any algorithm extras. */
  readonly layout: readonly TensorSpec[];
  readonly innerSteps: number;
  readonly innerLr: number;
  /** Parameters and task tensors carry a leading task dimension T; losses are [T] vectors. */
  readonly batched: boolean;
}

/**
 * Result of a training step; every tensor belongs to the caller's tf.tidy. Losses are scalars,
 * or [T] vectors when batched; gradients have θ's shapes, with a leading T when batched.
 */
export interface TaskMetaGradient {
  /** d(post-adaptation query loss)/dθ, one tensor per layout entry, in layout order. */
  readonly grads: tf.Tensor[];
  readonly preLoss: tf.Tensor;
  readonly postLoss: tf.Tensor;
}

export interface TaskEvaluation {
  /** Query loss after k = 0..steps inner steps. */
  readonly losses: tf.Tensor[];
  /** Query accuracy after k = 0..steps inner steps (classification losses only). */
  readonly accuracies?: tf.Tensor[];
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

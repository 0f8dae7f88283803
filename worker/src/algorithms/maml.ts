/**
 * MAML (Finn et al. 2017) and its first-order approximation.
 *
 * MAML: θ'_0 = θ, θ'_{k+1} = θ'_k − α ∇L_support(θ'_k); the meta-gradient is the exact
 * d L_query(θ'_K) / dθ, second order: the outer `tf.valueAndGrads` records the inner `tf.grads`
 * (tfjs keeps the tape on while gradient depth > 0), so it differentiates through every update.
 * FOMAML: the inner loop runs with no outer tape (its gradients are constants) and the
 * meta-gradient is ∇L_query evaluated at θ'_K.
 *
 * Task-batched (inner.batched): losses are [T] vectors and tf.grads differentiates their sum;
 * task t's loss depends only on its own copy θ_t, so each gradient slice is that task's own.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RunSpec } from '@metaloop/shared';
import { UnsupportedError } from '../errors.js';
import type { NamedTensors } from '../model/model.js';
import { sgdStep } from '../ops/sgd-step.js';
import type { Algorithm, InnerLoop, TaskEvaluation, TaskMetaGradient, TaskTensors } from './types.js';

function named(inner: InnerLoop, params: readonly tf.Tensor[]): NamedTensors {
  const out: NamedTensors = {};
  const layout = inner.layout;
  for (let i = 0; i < layout.length; i++) out[layout[i]!.name] = params[i]!;
  return out;
}

/** Loss of each task ([T] when batched, else a scalar). */
export function taskLoss(inner: InnerLoop, params: readonly tf.Tensor[], x: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const pred = inner.model.forward(named(inner, params), x);
  return inner.batched ? inner.loss.perTask(pred, y) : inner.loss.fn(pred, y);
}

/**
 * One SGD step on the support set; differentiable w.r.t. `params` when an outer tape is on. A
 * number rate is a constant (one fused update kernel where the backend has it: ops/sgd-step.ts).
 */
export function innerStep(inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors, lr: tf.Scalar | number): tf.Tensor[] {
  const g = tf.grads((...p: tf.Tensor[]) => taskLoss(inner, p, task.xs, task.ys))(params as tf.Tensor[]);
  return sgdStep(params, g, lr);
}

export function adapt(inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors, steps: number): tf.Tensor[] {
  const lr = inner.innerLr;
  let p = params as tf.Tensor[];
  for (let k = 0; k < steps; k++) p = innerStep(inner, p, task, lr);
  return p;
}

/** Query loss (and accuracy) after 0..steps plain SGD inner steps with the run's inner lr. */
export function sgdEvaluate(inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors, steps: number): TaskEvaluation {
  const lr = inner.innerLr;
  const losses: tf.Tensor[] = [];
  const accuracies: tf.Tensor[] = [];
  const accuracy = inner.batched ? inner.loss.perTaskAccuracy : inner.loss.accuracy;
  let p = params as tf.Tensor[];
  for (let k = 0; ; k++) {
    const pred = inner.model.forward(named(inner, p), task.xq);
    losses.push(inner.batched ? inner.loss.perTask(pred, task.yq) : inner.loss.fn(pred, task.yq));
    if (accuracy) accuracies.push(accuracy(pred, task.yq));
    if (k === steps) break;
    p = innerStep(inner, p, task, lr);
  }
  return accuracy ? { losses, accuracies } : { losses };
}

function metaGradient(firstOrder: boolean) {
  return (inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors): TaskMetaGradient => {
    // Scoped: the pre-adaptation pass's activations and FOMAML's inner steps are freed as soon as
    // their result exists (the meta-gradient's own pass keeps what its tape needs).
    const preLoss = tf.tidy(() => taskLoss(inner, params, task.xq, task.yq));
    if (firstOrder) {
      const adapted = tf.tidy(() => adapt(inner, params, task, inner.innerSteps));
      const { value, grads } = tf.valueAndGrads((...p: tf.Tensor[]) => taskLoss(inner, p, task.xq, task.yq))(adapted);
      return { grads, preLoss, postLoss: value };
    }
    const { value, grads } = tf.valueAndGrads((...p: tf.Tensor[]) =>
      taskLoss(inner, adapt(inner, p, task, inner.innerSteps), task.xq, task.yq),
    )(params as tf.Tensor[]);
    return { grads, preLoss, postLoss: value };
  };
}

/** MAML++ options this implementation does not have yet: refuse rather than silently ignore. */
function assertPlain(spec: RunSpec): void {
  const a = spec.algorithm;
  for (const opt of ['multiStepLoss', 'learnedLayerLr'] as const) {
    if (a[opt]) throw new UnsupportedError('algorithm', `${a.kind} with ${opt}`, [a.kind]);
  }
}

export function createMaml(spec?: RunSpec): Algorithm {
  if (spec) assertPlain(spec);
  return { kind: 'maml', metaGradient: metaGradient(false), evaluate: sgdEvaluate };
}

export function createFomaml(spec?: RunSpec): Algorithm {
  if (spec) assertPlain(spec);
  return { kind: 'fomaml', metaGradient: metaGradient(true), evaluate: sgdEvaluate };
}

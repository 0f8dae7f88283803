/**
 * Gradient-based meta-learners beyond plain MAML/FOMAML (./maml.ts), all built on one inner-loop
 * rule derived from the run spec:
 *
 * - ANIL (Raghu et al. 2020): the inner loop adapts only the head (`headParamNames`: the tensors of
 *   the graph's last parameterised layer); the meta-gradient is still exact and second order for
 *   every tensor (the head's inner gradient depends on the body's features).
 * - Meta-SGD (Li et al. 2017): θ'_{k+1} = θ'_k − α ⊙ ∇L_support, with α = the `lr.<name>` tensors of
 *   θ (same shape as each parameter), meta-learned with θ (second order).
 * - MAML++ (Antoniou et al. 2019) options, for maml and anil:
 *   `learnedLayerLr` — one learned rate per adapted tensor and inner step (`lslr.<name>`, shape [K]);
 *   `multiStepLoss` — the meta-objective is the mean of the query losses after steps 1..K. (MAML++
 *   anneals these weights toward the last step over training; a worker does not know the outer
 *   step, so the weights stay uniform.)
 * - Reptile (Nichol et al. 2018): K SGD steps on the support set from θ; the "meta-gradient" sent
 *   back is θ − θ′ (no second derivatives), so the coordinator's averaging and outer optimizer give
 *   Reptile's update θ ← θ − ε · mean(θ − θ′) (with SGD as the outer optimizer).
 *
 * Works per task and task-batched (parameters with a leading task dimension).
 */
import * as tf from '@tensorflow/tfjs-core';
import { adaptedParamNames, InvariantError, ModelError, type RunSpec } from '@metaloop/shared';
import { taskLoss } from './maml.js';
import type { Algorithm, InnerLoop, TaskEvaluation, TaskMetaGradient, TaskTensors } from './types.js';

type LrKind = 'fixed' | 'per-parameter' | 'per-layer-step';

/** How the inner loop updates θ, from the spec. */
export interface InnerRule {
  /** Names of the tensors the inner loop adapts. */
  readonly adapted: readonly string[];
  readonly lr: LrKind;
  readonly multiStepLoss: boolean;
}

export function innerRule(spec: RunSpec): InnerRule {
  const a = spec.algorithm;
  return {
    adapted: adaptedParamNames(spec),
    lr: a.kind === 'metasgd' ? 'per-parameter' : a.learnedLayerLr ? 'per-layer-step' : 'fixed',
    multiStepLoss: a.multiStepLoss,
  };
}

function indexOf(inner: InnerLoop, name: string): number {
  const i = inner.layout.findIndex((t) => t.name === name);
  if (i < 0) throw new ModelError(`θ has no tensor ${name} (layout: ${inner.layout.map((t) => t.name).join(', ')})`);
  return i;
}

/** The rate multiplying the gradient of tensor `name` at inner step k. */
function rateFor(rule: InnerRule, inner: InnerLoop, params: readonly tf.Tensor[], name: string, k: number, fixed: tf.Scalar): tf.Tensor {
  if (rule.lr === 'fixed') return fixed;
  if (rule.lr === 'per-parameter') return params[indexOf(inner, `lr.${name}`)]!;
  const lslr = params[indexOf(inner, `lslr.${name}`)]!;
  const steps = lslr.shape[lslr.rank - 1]!;
  const step = Math.min(k, steps - 1); // evaluation may run more steps than training: reuse the last rate
  if (!inner.batched) return tf.reshape(tf.slice(lslr, [step], [1]), []);
  const t = lslr.shape[0];
  const p = params[indexOf(inner, name)]!;
  return tf.reshape(tf.slice(lslr, [0, step], [t, 1]), [t, ...new Array<number>(p.rank - 1).fill(1)]);
}

/**
 * Inner steps first..first+steps-1 of the rule on the support set. Differentiable w.r.t. every
 * tensor of `params` when an outer tape is on; `afterStep` sees θ' after each step.
 */
export function adaptWithRule(
  rule: InnerRule,
  inner: InnerLoop,
  params: readonly tf.Tensor[],
  task: TaskTensors,
  steps: number,
  first = 0,
  afterStep?: (adapted: readonly tf.Tensor[], k: number) => void,
): tf.Tensor[] {
  const fixed = tf.scalar(inner.innerLr);
  const idx = rule.adapted.map((n) => indexOf(inner, n));
  let p = params.slice();
  for (let k = first; k < first + steps; k++) {
    const current = p;
    const g = tf.grads((...sub: tf.Tensor[]) => {
      const q = current.slice();
      idx.forEach((j, m) => (q[j] = sub[m]!));
      return taskLoss(inner, q, task.xs, task.ys);
    })(idx.map((j) => current[j]!));
    const next = current.slice();
    idx.forEach((j, m) => {
      next[j] = tf.sub(current[j]!, tf.mul(rateFor(rule, inner, current, rule.adapted[m]!, k, fixed), g[m]!));
    });
    p = next;
    afterStep?.(p, k);
  }
  return p;
}

function queryLoss(inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors): tf.Tensor {
  return taskLoss(inner, params, task.xq, task.yq);
}

/** Exact (second-order) meta-gradient of the rule's meta-objective. */
function secondOrder(rule: InnerRule) {
  return (inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors): TaskMetaGradient => {
    const preLoss = tf.tidy(() => queryLoss(inner, params, task)); // its activations freed now
    let post: tf.Tensor | null = null;
    const { value, grads } = tf.valueAndGrads((...p: tf.Tensor[]) => {
      if (!rule.multiStepLoss) {
        const loss = queryLoss(inner, adaptWithRule(rule, inner, p, task, inner.innerSteps), task);
        post = tf.keep(tf.clone(loss));
        return loss;
      }
      const losses: tf.Tensor[] = [];
      adaptWithRule(rule, inner, p, task, inner.innerSteps, 0, (q) => losses.push(queryLoss(inner, q, task)));
      post = tf.keep(tf.clone(losses[losses.length - 1]!));
      return tf.div(tf.addN(losses), losses.length);
    })(params as tf.Tensor[]);
    const kept = post as tf.Tensor | null;
    if (kept === null) throw new InvariantError('meta-objective did not run');
    const postLoss = rule.multiStepLoss ? tf.clone(kept) : value;
    kept.dispose();
    return { grads, preLoss, postLoss };
  };
}

/** Query loss (and accuracy) after 0..steps inner steps of the rule. */
function evaluateWith(rule: InnerRule) {
  return (inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors, steps: number): TaskEvaluation => {
    const accuracy = inner.batched ? inner.loss.perTaskAccuracy : inner.loss.accuracy;
    const losses: tf.Tensor[] = [];
    const accuracies: tf.Tensor[] = [];
    const score = (p: readonly tf.Tensor[]) => {
      const named: Record<string, tf.Tensor> = {};
      inner.layout.forEach((t, i) => (named[t.name] = p[i]!));
      const pred = inner.model.forward(named, task.xq);
      losses.push(inner.batched ? inner.loss.perTask(pred, task.yq) : inner.loss.fn(pred, task.yq));
      if (accuracy) accuracies.push(accuracy(pred, task.yq));
    };
    score(params);
    adaptWithRule(rule, inner, params, task, steps, 0, (p) => score(p));
    return accuracy ? { losses, accuracies } : { losses };
  };
}

function reptileMetaGradient(rule: InnerRule) {
  return (inner: InnerLoop, params: readonly tf.Tensor[], task: TaskTensors): TaskMetaGradient => {
    const adapted = tf.tidy(() => adaptWithRule(rule, inner, params, task, inner.innerSteps));
    return {
      grads: params.map((p, i) => tf.sub(p, adapted[i]!)),
      preLoss: tf.tidy(() => queryLoss(inner, params, task)),
      postLoss: tf.tidy(() => queryLoss(inner, adapted, task)),
    };
  };
}

/** MAML with the MAML++ options (multiStepLoss, learnedLayerLr); plain MAML otherwise. */
export function createMamlPlusPlus(spec: RunSpec): Algorithm {
  const rule = innerRule(spec);
  return { kind: 'maml', metaGradient: secondOrder(rule), evaluate: evaluateWith(rule) };
}

export function createAnil(spec: RunSpec): Algorithm {
  const rule = innerRule(spec);
  return { kind: 'anil', metaGradient: secondOrder(rule), evaluate: evaluateWith(rule) };
}

export function createMetaSgd(spec: RunSpec): Algorithm {
  const rule = innerRule(spec);
  return { kind: 'metasgd', metaGradient: secondOrder(rule), evaluate: evaluateWith(rule) };
}

export function createReptile(spec: RunSpec): Algorithm {
  const rule = innerRule(spec);
  return { kind: 'reptile', metaGradient: reptileMetaGradient(rule), evaluate: evaluateWith(rule) };
}

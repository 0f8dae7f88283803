/**
 * MAML, FOMAML, Meta-SGD and Reptile on an MLP, task by task on the host (./mlp.ts): the engine's
 * fast path for small regression and classification MLPs (sinusoid), where tfjs' per-kernel
 * overhead, not arithmetic, bounds the tfjs path (~340 kernel launches per second-order pass).
 *
 * Per task, with support loss ℓ_s, query loss ℓ_q and K inner steps of rate α:
 *   θ_0 = θ, θ_{k+1} = θ_k − α ⊙ ∇ℓ_s(θ_k)
 *   MAML meta-gradient (exact, second order): v_K = ∇ℓ_q(θ_K), v_k = v_{k+1} − H_s(θ_k)·(α ⊙ v_{k+1}),
 *   sent back v_0 (dθ_{k+1}/dθ_k = I − H_s(θ_k)·diag(α), H symmetric);
 *   Meta-SGD also gets ∂/∂α = −Σ_k ∇ℓ_s(θ_k) ⊙ v_{k+1};
 *   FOMAML: ∇ℓ_q(θ_K); Reptile: θ − θ_K.
 * Same rows as the tfjs path (engine.trainRows / evalRows): [grad…, pre, post] per training task,
 * [loss_0..loss_K, acc_0..acc_K] per evaluation task; equal to it within float32 rounding (this
 * path computes in float64), and the same on every backend.
 */
import { MODEL_INPUT, type ModelGraph, type RunSpec } from '@metaloop/shared';
import type { TaskData, TaskFamily } from '../tasks/types.js';
import { MlpWorkspace, accuracy, backward, forward, hessianVector, loss, parameterOffsets, type Activation, type FusedLoss } from './mlp.js';

type FusedKind = 'maml' | 'fomaml' | 'metasgd' | 'reptile';

export interface FusedMlpPlan {
  readonly kind: FusedKind;
  readonly sizes: readonly number[];
  readonly activation: Activation;
  readonly loss: FusedLoss;
  readonly innerSteps: number;
  readonly innerLr: number;
  /** Size of the model part of θ (Meta-SGD's rates follow it). */
  readonly modelSize: number;
}

/**
 * Widths and activation when the graph is an MLP the fused path computes exactly: sequential,
 * an optional leading Flatten, Dense layers with biases on vectors, one activation after every
 * Dense but the last (the Dense's own `activation` or an Activation / default ReLU layer), all
 * relu or all tanh, the last Dense linear; Dropout (the identity) anywhere. Else why not.
 */
export function mlpShapeOf(graph: ModelGraph): { sizes: number[]; activation: Activation } | string {
  const sizes = [graph.input.reduce((a, b) => a * b, 1)];
  const acts: string[] = [];
  let prev = MODEL_INPUT;
  let pending = false; // a Dense whose activation has not been seen yet
  for (const n of graph.nodes) {
    if (n.inputs.length !== 1 || n.inputs[0] !== prev) return `layer ${n.name} is not sequential`;
    prev = n.name;
    const c = n.config;
    if (n.type === 'Dropout') continue;
    if (n.type === 'Flatten' && sizes.length === 1) continue;
    if (n.type === 'Dense') {
      if (n.inputShapes[0]!.length !== 1) return `layer ${n.name} (Dense) maps a [${n.inputShapes[0]!.join(', ')}] input (fused path: Dense on vectors)`;
      if (c.use_bias !== true) return `layer ${n.name} has no bias (fused path: Dense with bias)`;
      if (pending) acts.push('linear');
      sizes.push(n.shape[0]!);
      pending = c.activation === 'linear';
      if (!pending) acts.push(String(c.activation));
      continue;
    }
    const act = n.type === 'Activation' ? String(c.activation) : n.type === 'ReLU' && c.negative_slope === 0 && c.max_value === null ? 'relu' : undefined;
    if (act === undefined || !pending) return `layer ${n.name} (${n.type}) (fused path: Dense, relu or tanh, Flatten first, Dropout)`;
    if (act !== 'linear') {
      acts.push(act);
      pending = false;
    }
  }
  if (!pending) return 'the last Dense has an activation (fused path: a linear output)';
  // acts holds one activation per hidden Dense ('linear' where none followed it).
  const kinds = [...new Set(acts)];
  if (kinds.length > 1 || (kinds[0] !== undefined && kinds[0] !== 'relu' && kinds[0] !== 'tanh')) return `activations ${kinds.join(', ')} (fused path: all relu or all tanh)`;
  return { sizes, activation: kinds[0] === 'tanh' ? 'tanh' : 'relu' };
}

/**
 * The plan when the fused path computes exactly what the tfjs path would for this spec, else the
 * reason it does not (ANIL, MAML++ options, graphs that are not an MLP). The mlp preset, and a
 * `kind: layers` graph of the same shape, take it unless `model.fused: false`.
 */
export function fusedMlpPlan(spec: RunSpec, graph: ModelGraph, family: TaskFamily): FusedMlpPlan | string {
  const m = spec.model;
  if (m.kind !== 'mlp' && m.kind !== 'layers') return `model ${m.kind} (fused path: mlp, or a layers graph shaped like one)`;
  if (m.fused === false) return 'model.fused: false in the spec';
  const a = spec.algorithm;
  const kinds: readonly string[] = ['maml', 'fomaml', 'metasgd', 'reptile'];
  if (!kinds.includes(a.kind)) return `algorithm ${a.kind} (fused path: ${kinds.join(', ')})`;
  if (a.multiStepLoss || a.learnedLayerLr) return 'MAML++ options (multiStepLoss, learnedLayerLr)';
  const shape = mlpShapeOf(graph);
  if (typeof shape === 'string') return shape;
  const inputs = family.inputShape.reduce((p, q) => p * q, 1);
  if (shape.sizes[0] !== inputs) return `the model reads ${shape.sizes[0]} inputs, the task gives ${inputs}`;
  return {
    kind: a.kind as FusedKind,
    sizes: shape.sizes,
    activation: shape.activation,
    loss: family.loss,
    innerSteps: a.innerSteps,
    innerLr: a.innerLr,
    modelSize: parameterOffsets(shape.sizes).size,
  };
}

/** Computes rows task by task; buffers are reused across tasks (one instance per shard). */
export class FusedMlp {
  readonly plan: FusedMlpPlan;
  private readonly support: MlpWorkspace;
  private readonly query: MlpWorkspace;
  /** θ (model part) as float64. */
  private readonly theta: Float64Array;
  /** Per-parameter inner rates α (Meta-SGD's learned ones, else the spec's rate everywhere). */
  private readonly alpha: Float64Array;
  /** θ_0..θ_K of the current task. */
  private readonly path: Float64Array[];
  /** Support gradients ∇ℓ_s(θ_k) of the current task (Meta-SGD's α gradient needs them). */
  private readonly supportGrads: Float64Array[];
  private readonly v: Float64Array;
  private readonly tmp: Float64Array;
  private readonly hv: Float64Array;

  constructor(plan: FusedMlpPlan, params: Float32Array) {
    this.plan = plan;
    const shape = { sizes: plan.sizes, activation: plan.activation, loss: plan.loss };
    this.support = new MlpWorkspace(shape);
    this.query = new MlpWorkspace(shape);
    const P = plan.modelSize;
    const expected = plan.kind === 'metasgd' ? 2 * P : P;
    if (params.length !== expected) throw new RangeError(`θ has ${params.length} values, the fused mlp layout needs ${expected}`);
    this.theta = Float64Array.from(params.subarray(0, P));
    this.alpha = plan.kind === 'metasgd' ? Float64Array.from(params.subarray(P)) : new Float64Array(P).fill(plan.innerLr);
    const K = Math.max(plan.innerSteps, 1);
    this.path = Array.from({ length: K + 1 }, () => new Float64Array(P));
    this.supportGrads = Array.from({ length: K }, () => new Float64Array(P));
    this.v = new Float64Array(P);
    this.tmp = new Float64Array(P);
    this.hv = new Float64Array(P);
  }

  /** Width of a training row: θ's size (with Meta-SGD's rates) + pre + post. */
  get trainWidth(): number {
    return (this.plan.kind === 'metasgd' ? 2 : 1) * this.plan.modelSize + 2;
  }

  /** θ_{k+1} = θ_k − α ⊙ g for k < steps, from θ_0 = θ; leaves the support workspace at θ_{steps−1}. */
  private adapt(task: TaskData, steps: number): void {
    const P = this.plan.modelSize;
    this.path[0]!.set(this.theta);
    const s = task.support;
    const alpha = this.alpha;
    for (let k = 0; k < steps; k++) {
      const th = this.path[k]!;
      const g = this.supportGrads[k]!;
      forward(this.support, th, s.x, s.n);
      loss(this.support, s.y);
      backward(this.support, th, g);
      const next = this.path[k + 1]!;
      for (let i = 0; i < P; i++) next[i] = th[i]! - alpha[i]! * g[i]!;
    }
  }

  /** One training row [grad…, pre, post] for a task, written at out[offset…]. */
  trainRow(task: TaskData, out: Float64Array, offset = 0): void {
    const plan = this.plan;
    const P = plan.modelSize;
    const K = plan.innerSteps;
    const q = task.query;
    const s = task.support;
    forward(this.query, this.theta, q.x, q.n);
    const pre = loss(this.query, q.y);
    this.adapt(task, K);
    const thK = this.path[K]!;
    forward(this.query, thK, q.x, q.n);
    const post = loss(this.query, q.y);
    const row = out.subarray(offset, offset + this.trainWidth);
    if (plan.kind === 'reptile') {
      for (let i = 0; i < P; i++) row[i] = this.theta[i]! - thK[i]!;
    } else {
      const v = this.v;
      backward(this.query, thK, v);
      if (plan.kind !== 'fomaml') {
        const alpha = this.alpha;
        const av = this.tmp;
        const metaSgd = plan.kind === 'metasgd';
        if (metaSgd) row.fill(0, P, 2 * P);
        for (let k = K - 1; k >= 0; k--) {
          const th = this.path[k]!;
          // The support workspace holds θ_{K−1}'s pass from adapt(); earlier steps are recomputed.
          if (k !== K - 1) {
            forward(this.support, th, s.x, s.n);
            loss(this.support, s.y);
            backward(this.support, th, this.hv);
          }
          if (metaSgd) {
            const g = this.supportGrads[k]!;
            for (let i = 0; i < P; i++) row[P + i] = row[P + i]! - g[i]! * v[i]!;
          }
          for (let i = 0; i < P; i++) av[i] = alpha[i]! * v[i]!;
          hessianVector(this.support, th, av, this.hv);
          for (let i = 0; i < P; i++) v[i] = v[i]! - this.hv[i]!;
        }
      }
      row.set(v.subarray(0, P), 0);
    }
    row[row.length - 2] = pre;
    row[row.length - 1] = post;
  }

  /** One evaluation row [loss_0..loss_steps, acc_0..acc_steps (classification)] at out[offset…]. */
  evalRow(task: TaskData, steps: number, out: Float64Array, offset = 0): void {
    const P = this.plan.modelSize;
    const classify = this.plan.loss === 'xent';
    const q = task.query;
    const s = task.support;
    const th = this.path[0]!;
    th.set(this.theta);
    const g = this.tmp;
    for (let k = 0; ; k++) {
      forward(this.query, th, q.x, q.n);
      out[offset + k] = loss(this.query, q.y);
      if (classify) out[offset + steps + 1 + k] = accuracy(this.query, q.y);
      if (k === steps) break;
      forward(this.support, th, s.x, s.n);
      loss(this.support, s.y);
      backward(this.support, th, g);
      for (let i = 0; i < P; i++) th[i] = th[i]! - this.alpha[i]! * g[i]!;
    }
  }
}

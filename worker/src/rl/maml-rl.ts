/**
 * MAML and FOMAML for meta-RL, one task at a time on the host (docs/meta-rl.md): the MAML-VPG form
 * of garage's MAMLVPG and pytorch-maml-rl.
 *
 * Per task (seed s), with K inner steps of rate α and L(θ; D) the surrogate −Σ c log π over the
 * fixed rollouts D (gaussian.ts, advantages.ts):
 *   θ_0 = θ;  D_k = K' episodes sampled with θ_k (batch k);  θ_{k+1} = θ_k − α ∇L(θ_k; D_k)
 *   D_K sampled with the adapted θ_K: the outer objective L(θ_K; D_K)
 *   MAML meta-gradient (second order, exact for fixed rollouts): v_K = ∇L(θ_K; D_K),
 *   v_k = v_{k+1} − α H(θ_k; D_k) v_{k+1} (curvature lvc: ProMP's H instead), sent back v_0;
 *   FOMAML: v_K.
 * What is left out: the score-function term of the inner samples' dependence on θ beyond lvc's
 * curvature (full DiCE), and TRPO's trust region (the outer step is the coordinator's Adam or SGD).
 *
 * Rows, as the supervised paths' (engine.ts): train [grad…, return of D_0, return of D_K];
 * eval [return after k = 0..K inner steps], each step adapting on fresh rollouts of the current
 * policy (pytorch-maml-rl's sampler and test.py).
 */
import { rlDims, type RlSpec, type RlTaskSpec, type RunSpec } from '@metaloop/shared';
import type { MlpWorkspace } from '../fused/mlp.js';
import { surrogateCoefficients, type AdvantageOptions } from './advantages.js';
import { createEnv, type RlEnv } from './envs.js';
import { GaussianPolicy } from './gaussian.js';
import { sampleRollouts, type Rollouts } from './rollouts.js';

export interface RlPlan {
  readonly task: RlTaskSpec;
  readonly rl: RlSpec;
  readonly kind: 'maml' | 'fomaml';
  readonly innerSteps: number;
  readonly innerLr: number;
  readonly policy: GaussianPolicy;
}

/** A task's batch with its surrogate coefficients. */
export interface Batch {
  readonly rollouts: Rollouts;
  readonly coeff: Float64Array;
  readonly rows: number;
}

/** The plan of a meta-RL spec (the spec is validated: an RL family, a gaussian-mlp, maml or fomaml). */
export function rlPlan(spec: RunSpec, task: RlTaskSpec): RlPlan {
  const m = spec.model;
  if (m.kind !== 'gaussian-mlp') throw new RangeError(`meta-RL needs model.kind gaussian-mlp, got ${m.kind}`);
  const a = spec.algorithm;
  if (a.kind !== 'maml' && a.kind !== 'fomaml') throw new RangeError(`meta-RL takes maml or fomaml, got ${a.kind}`);
  if (!spec.rl) throw new RangeError('a meta-RL spec has an rl section once validated');
  const dims = rlDims(task);
  return {
    task,
    rl: spec.rl,
    kind: a.kind,
    innerSteps: a.innerSteps,
    innerLr: a.innerLr,
    policy: new GaussianPolicy([dims.obs, ...m.hidden, dims.act], m.activation),
  };
}

/** Computes rows task by task; buffers are reused across tasks (one instance per shard). */
export class RlTaskComputer {
  private readonly policy: GaussianPolicy;
  private readonly theta: Float64Array;
  private readonly sampleWs: MlpWorkspace;
  private readonly innerWs: MlpWorkspace;
  private readonly outerWs: MlpWorkspace;
  private readonly g: Float64Array;
  private readonly hv: Float64Array;
  private readonly tmp: Float64Array;

  constructor(
    readonly plan: RlPlan,
    params: Float32Array,
  ) {
    this.policy = plan.policy;
    if (params.length !== this.policy.size) throw new RangeError(`θ has ${params.length} values, the gaussian-mlp layout needs ${this.policy.size}`);
    this.theta = Float64Array.from(params);
    this.sampleWs = this.policy.workspace();
    this.innerWs = this.policy.workspace();
    this.outerWs = this.policy.workspace();
    this.g = new Float64Array(this.policy.size);
    this.hv = new Float64Array(this.policy.size);
    this.tmp = new Float64Array(this.policy.size);
  }

  /** Width of a training row: θ's size + the two returns. */
  get trainWidth(): number {
    return this.policy.size + 2;
  }

  private advantageOptions(taskSeed: number): AdvantageOptions {
    const rl = this.plan.rl;
    return { gamma: rl.gamma, gaeLambda: rl.gaeLambda, normalize: rl.normalizeAdvantages, baselineReg: rl.baselineReg, taskSeed };
  }

  /** Batch `batch` of the task sampled with θ, with its coefficients. */
  sample(env: RlEnv, taskSeed: number, batch: number, theta: Float64Array): Batch {
    const { episodes, horizon } = this.plan.task;
    const rollouts = sampleRollouts({ env, policy: this.policy, ws: this.sampleWs, episodes, horizon, taskSeed, batch }, theta);
    const coeff = surrogateCoefficients(rollouts, env.obsDim, this.advantageOptions(taskSeed));
    return { rollouts, coeff, rows: episodes * horizon };
  }

  /** ∇L(θ; D) into g; leaves ws holding the pass. */
  gradient(ws: MlpWorkspace, theta: Float64Array, d: Batch, g: Float64Array): number {
    return this.policy.surrogate(ws, theta, d.rollouts.obs, d.rollouts.act, d.coeff, d.rows, g);
  }

  /** One training row [grad…, return of D_0, return of D_K] for the task with this seed, at out[offset…]. */
  trainRow(taskSeed: number, out: Float64Array, offset = 0): void {
    const K = this.plan.innerSteps;
    const alpha = this.plan.innerLr;
    const P = this.policy.size;
    const env = createEnv(this.plan.task, taskSeed);
    const path: Float64Array[] = [this.theta];
    const batches: Batch[] = [];
    for (let k = 0; k < K; k++) {
      const th = path[k]!;
      const d = this.sample(env, taskSeed, k, th);
      batches.push(d);
      this.gradient(this.innerWs, th, d, this.g);
      const next = new Float64Array(P);
      for (let i = 0; i < P; i++) next[i] = th[i]! - alpha * this.g[i]!;
      path.push(next);
    }
    const outer = this.sample(env, taskSeed, K, path[K]!);
    const v = out.subarray(offset, offset + P);
    this.gradient(this.outerWs, path[K]!, outer, this.g);
    v.set(this.g);
    if (this.plan.kind === 'maml') {
      const lvc = this.plan.rl.curvature === 'lvc';
      for (let k = K - 1; k >= 0; k--) {
        const th = path[k]!;
        const d = batches[k]!;
        // innerWs holds θ_{K−1}'s pass from the inner loop; earlier steps are recomputed.
        if (k !== K - 1) this.gradient(this.innerWs, th, d, this.tmp);
        this.policy.hvp(this.innerWs, th, d.rollouts.act, d.coeff, v, this.hv, lvc, this.tmp);
        for (let i = 0; i < P; i++) v[i] = v[i]! - alpha * this.hv[i]!;
      }
    }
    out[offset + P] = (K > 0 ? batches[0]! : outer).rollouts.meanReturn;
    out[offset + P + 1] = outer.rollouts.meanReturn;
  }

  /** One evaluation row [return after k = 0..steps inner steps] at out[offset…]. */
  evalRow(taskSeed: number, steps: number, out: Float64Array, offset = 0): void {
    const alpha = this.plan.innerLr;
    const P = this.policy.size;
    const env = createEnv(this.plan.task, taskSeed);
    const th = Float64Array.from(this.theta);
    for (let k = 0; ; k++) {
      const d = this.sample(env, taskSeed, k, th);
      out[offset + k] = d.rollouts.meanReturn;
      if (k === steps) break;
      this.gradient(this.innerWs, th, d, this.g);
      for (let i = 0; i < P; i++) th[i] = th[i]! - alpha * this.g[i]!;
    }
  }
}

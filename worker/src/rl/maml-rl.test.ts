/**
 * The meta-RL meta-gradient (./maml-rl.ts) against central finite differences with fixed
 * rollouts: J(θ) = L(θ_K(θ); D_K) where θ_{k+1} = θ_k − α ∇L(θ_k; D_k) and every batch D_k (its
 * observations, actions and surrogate coefficients) is the one trainRow sampled, held fixed while
 * θ moves. maml (curvature vpg) must equal ∇J; lvc must equal ∇ of the same J with ProMP's inner
 * surrogate −Σ c·π_θ/π_θ₀ (θ₀ fixed); fomaml is ∇L(θ_K; D_K). Also: rows are bitwise reproducible.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { initParams, parseSpec, Rng, type RunSpec } from '@metaloop/shared';
import { centralDifference64, dot64 as dot, normalArray64 as randomArray, relErr } from '@metaloop/testing/numerics';
import { createEnv } from './envs.js';
import { RlTaskComputer, rlPlan, type Batch } from './maml-rl.js';

function spec(family: 'navigation-2d' | 'pendulum', kind: 'maml' | 'fomaml', innerSteps: number, curvature: 'vpg' | 'lvc' = 'vpg'): RunSpec {
  return parseSpec(`
name: fd
seed: 3
task: { family: ${family}, episodes: 4, horizon: ${family === 'pendulum' ? 15 : 12} }
model: { kind: gaussian-mlp, hidden: [10, 7], activation: tanh, initStd: 0.8 }
algorithm: { kind: ${kind}, innerSteps: ${innerSteps}, innerLr: 0.3 }
rl: { gamma: 0.95, gaeLambda: 0.9, curvature: ${curvature} }
outer: { metaBatch: 2, shardSize: 1 }
`);
}

interface Setup {
  readonly computer: RlTaskComputer;
  readonly theta: Float64Array;
  readonly batches: Batch[];
  readonly grad: Float64Array;
  readonly returns: [number, number];
}

/** θ (θ₀ nudged so the policy is not symmetric), trainRow's output, and the batches it sampled along its path. */
function setup(s: RunSpec, taskSeed: number): Setup {
  const plan = rlPlan(s, s.task as never);
  const rng = new Rng(99);
  const params = initParams(s).data.map((x) => x + 0.2 * rng.normal());
  const computer = new RlTaskComputer(plan, params);
  const out = new Float64Array(computer.trainWidth);
  computer.trainRow(taskSeed, out);
  const P = plan.policy.size;
  const env = createEnv(plan.task, taskSeed);
  const theta = Float64Array.from(params);
  const batches: Batch[] = [];
  let th = theta;
  const ws = plan.policy.workspace();
  for (let k = 0; k <= plan.innerSteps; k++) {
    const d = computer.sample(env, taskSeed, k, th);
    batches.push(d);
    if (k === plan.innerSteps) break;
    const g = new Float64Array(P);
    computer.gradient(ws, th, d, g);
    th = th.map((x, i) => x - plan.innerLr * g[i]!);
  }
  return { computer, theta, batches, grad: out.slice(0, P), returns: [out[P]!, out[P + 1]!] };
}

/** J(p) over the fixed batches; lvc: the inner gradients of −Σ c·π_p/π_{θ_k}, θ_k the path at θ. */
function objective(st: Setup, p: Float64Array, lvcPath?: Float64Array[]): number {
  const plan = st.computer.plan;
  const policy = plan.policy;
  const ws = policy.workspace();
  const P = policy.size;
  const K = plan.innerSteps;
  let th = p;
  for (let k = 0; k < K; k++) {
    const d = st.batches[k]!;
    let coeff = d.coeff;
    if (lvcPath) {
      const n = d.rows;
      const lp = new Float64Array(n);
      const lp0 = new Float64Array(n);
      policy.mean(ws, th, d.rollouts.obs, n);
      policy.logProbs(ws, th, d.rollouts.act, lp);
      policy.mean(ws, lvcPath[k]!, d.rollouts.obs, n);
      policy.logProbs(ws, lvcPath[k]!, d.rollouts.act, lp0);
      coeff = d.coeff.map((c, r) => c * Math.exp(lp[r]! - lp0[r]!));
    }
    const g = new Float64Array(P);
    policy.surrogate(ws, th, d.rollouts.obs, d.rollouts.act, coeff, d.rows, g);
    th = th.map((x, i) => x - plan.innerLr * g[i]!);
  }
  const outer = st.batches[K]!;
  return policy.surrogate(ws, th, outer.rollouts.obs, outer.rollouts.act, outer.coeff, outer.rows, new Float64Array(P));
}

/** The inner path θ_0..θ_{K−1} at θ (lvc's ⊥θ of each step). */
function path(st: Setup): Float64Array[] {
  const plan = st.computer.plan;
  const ws = plan.policy.workspace();
  const out = [st.theta];
  for (let k = 0; k + 1 < plan.innerSteps; k++) {
    const g = new Float64Array(plan.policy.size);
    st.computer.gradient(ws, out[k]!, st.batches[k]!, g);
    out.push(out[k]!.map((x, i) => x - plan.innerLr * g[i]!));
  }
  return out;
}

/** Largest relative error of grad·v against central differences of J along 4 random directions. */
function fdError(st: Setup, J: (p: Float64Array) => number): { worst: number; pairs: [number, number][] } {
  const rng = new Rng(5);
  const pairs: [number, number][] = [];
  let worst = 0;
  for (let trial = 0; trial < 4; trial++) {
    const v = randomArray(rng, st.theta.length);
    const fd = centralDifference64(J, st.theta, v);
    const an = dot(st.grad, v);
    pairs.push([an, fd]);
    worst = Math.max(worst, relErr(an, fd, 1e-6));
  }
  return { worst, pairs };
}

describe('meta-RL meta-gradient vs finite differences with fixed rollouts (float64)', () => {
  const cases: [family: 'navigation-2d' | 'pendulum', K: number][] = [
    ['navigation-2d', 1],
    ['navigation-2d', 2],
    ['pendulum', 1],
  ];
  for (const [family, K] of cases) {
    test(`${family}, maml (second order), ${K} inner step${K > 1 ? 's' : ''}`, (t) => {
      const st = setup(spec(family, 'maml', K), 1234);
      const { worst, pairs } = fdError(st, (p) => objective(st, p));
      t.diagnostic(`worst relative error ${worst.toExponential(2)} over 4 directions`);
      assert.ok(worst < 1e-6, `relative error ${worst}: ${JSON.stringify(pairs)}`);
    });
  }

  test('navigation-2d, maml with ProMP lvc curvature, 2 inner steps: ∇J with the ratio surrogate inside', (t) => {
    const st = setup(spec('navigation-2d', 'maml', 2, 'lvc'), 77);
    const lvcPath = path(st);
    const { worst, pairs } = fdError(st, (p) => objective(st, p, lvcPath));
    t.diagnostic(`worst relative error ${worst.toExponential(2)} over 4 directions`);
    assert.ok(worst < 1e-6, `relative error ${worst}: ${JSON.stringify(pairs)}`);
    // And it is not the vpg meta-gradient.
    const vpg = fdError(st, (p) => objective(st, p));
    assert.ok(vpg.worst > 1e-4, `lvc and vpg agree (${vpg.worst}): the lvc term is missing`);
  });

  test('fomaml is the outer surrogate gradient at θ_K; maml differs from it', () => {
    const fo = setup(spec('navigation-2d', 'fomaml', 1), 42);
    const so = setup(spec('navigation-2d', 'maml', 1), 42);
    // Same rollouts (the sampler does not depend on the algorithm), same returns.
    assert.deepEqual(fo.returns, so.returns);
    const plan = fo.computer.plan;
    const ws = plan.policy.workspace();
    const g0 = new Float64Array(plan.policy.size);
    fo.computer.gradient(ws, fo.theta, fo.batches[0]!, g0);
    const thK = fo.theta.map((x, i) => x - plan.innerLr * g0[i]!);
    const gK = new Float64Array(plan.policy.size);
    fo.computer.gradient(ws, thK, fo.batches[1]!, gK);
    assert.deepEqual(Array.from(fo.grad), Array.from(gK));
    assert.ok(so.grad.some((x, i) => relErr(x, fo.grad[i]!, 1e-6) > 1e-3), 'the second-order term changed nothing');
  });

  test('rows are bitwise reproducible and differ between tasks', () => {
    const s = spec('navigation-2d', 'maml', 1);
    const a = setup(s, 9);
    const b = setup(s, 9);
    const c = setup(s, 10);
    assert.deepEqual(Array.from(a.grad), Array.from(b.grad));
    assert.deepEqual(a.returns, b.returns);
    assert.notDeepEqual(a.returns, c.returns);
  });
});

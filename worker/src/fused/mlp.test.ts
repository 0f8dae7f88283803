/**
 * The fused host MLP (./mlp.ts, ./maml.ts) against central finite differences in float64: the
 * gradient of each loss, the Hessian-vector product (finite differences of the gradient), and the
 * whole MAML / Meta-SGD meta-gradient (finite differences of the adapted query loss), for relu and
 * tanh, MSE and cross-entropy, on odd sizes. engine.test.ts compares the path with tfjs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import type { TaskData } from '../tasks/types.js';
import { FusedMlp, type FusedMlpPlan } from './maml.js';
import { MlpWorkspace, backward, forward, hessianVector, loss, parameterOffsets, type Activation, type FusedLoss } from './mlp.js';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

function randomArray(rng: Rng, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => scale * rng.normal());
}

/** Targets: regression values, or one-hot rows for cross-entropy. */
function targets(rng: Rng, n: number, C: number, kind: FusedLoss): Float32Array {
  if (kind === 'mse') return Float32Array.from({ length: n * C }, () => rng.normal());
  const y = new Float32Array(n * C);
  for (let r = 0; r < n; r++) y[r * C + Math.floor(rng.uniform(0, 1) * C)] = 1;
  return y;
}

const SHAPES: { name: string; sizes: number[]; activation: Activation; loss: FusedLoss }[] = [
  { name: 'relu 3-7-5-2 MSE', sizes: [3, 7, 5, 2], activation: 'relu', loss: 'mse' },
  { name: 'tanh 4-6-9-3 MSE', sizes: [4, 6, 9, 3], activation: 'tanh', loss: 'mse' },
  { name: 'relu 5-11-4 cross-entropy', sizes: [5, 11, 4], activation: 'relu', loss: 'xent' },
  { name: 'tanh 2-9-8-5 cross-entropy', sizes: [2, 9, 8, 5], activation: 'tanh', loss: 'xent' },
  { name: 'relu 1-40-40-1 (sinusoid net) MSE', sizes: [1, 40, 40, 1], activation: 'relu', loss: 'mse' },
];

describe('fused MLP: loss, gradient and Hessian-vector product vs finite differences (float64)', () => {
  for (const sh of SHAPES) {
    test(sh.name, () => {
      const rng = new Rng(sh.sizes.reduce((a, b) => a * 31 + b, 7));
      const shape = { sizes: sh.sizes, activation: sh.activation, loss: sh.loss };
      const P = parameterOffsets(sh.sizes).size;
      const n = 7;
      const x = Float32Array.from({ length: n * sh.sizes[0]! }, () => rng.normal());
      const y = targets(rng, n, sh.sizes[sh.sizes.length - 1]!, sh.loss);
      const theta = randomArray(rng, P, 0.5);
      const ws = new MlpWorkspace(shape);
      const lossAt = (p: Float64Array) => {
        forward(ws, p, x, n);
        return loss(ws, y);
      };
      const gradAt = (p: Float64Array) => {
        const g = new Float64Array(P);
        forward(ws, p, x, n);
        loss(ws, y);
        backward(ws, p, g);
        return g;
      };
      const g = gradAt(theta);
      const eps = 1e-6;
      for (let s = 0; s < 4; s++) {
        const d = randomArray(rng, P);
        const fd = (lossAt(theta.map((v, i) => v + eps * d[i]!)) - lossAt(theta.map((v, i) => v - eps * d[i]!))) / (2 * eps);
        const got = dot(g, d);
        assert.ok(Math.abs(got - fd) <= 1e-6 * Math.max(1, Math.abs(fd)), `gradient · d ${got} vs finite differences ${fd}`);
        // H·v vs (∇ℓ(θ + εv) − ∇ℓ(θ − εv)) / 2ε, compared along another direction and as vectors.
        const v = randomArray(rng, P);
        const hv = new Float64Array(P);
        gradAt(theta);
        hessianVector(ws, theta, v, hv);
        const gp = gradAt(theta.map((t, i) => t + eps * v[i]!));
        const gm = gradAt(theta.map((t, i) => t - eps * v[i]!));
        const fdHv = gp.map((a, i) => (a - gm[i]!) / (2 * eps));
        const err = Math.hypot(...hv.map((a, i) => a - fdHv[i]!)) / Math.max(1e-3, Math.hypot(...fdHv));
        assert.ok(err < 1e-5, `H·v relative error ${err}`);
        assert.ok(Math.hypot(...hv) > 0, 'H·v should not vanish');
      }
    });
  }
});

/** A task with random support and query sets of the shape's sizes. */
function randomTask(rng: Rng, sizes: readonly number[], kind: FusedLoss, k: number, q: number): TaskData {
  const C = sizes[sizes.length - 1]!;
  const ex = (n: number) => ({ x: Float32Array.from({ length: n * sizes[0]! }, () => rng.normal()), y: targets(rng, n, C, kind), n });
  return { support: ex(k), query: ex(q) };
}

function planOf(kind: FusedMlpPlan['kind'], sizes: number[], activation: Activation, lossKind: FusedLoss, innerSteps: number, innerLr: number): FusedMlpPlan {
  return { kind, sizes, activation, loss: lossKind, innerSteps, innerLr, modelSize: parameterOffsets(sizes).size };
}

/** Query loss after the plan's inner steps from θ (and α for Meta-SGD), in float64 (the meta-objective). */
function metaObjective(plan: FusedMlpPlan, params: Float64Array, task: TaskData): number {
  const h = new FusedMlp(plan, Float32Array.from(params));
  // FusedMlp stores θ as float64 copies of float32: evaluate with exact float64 θ instead.
  (h as unknown as { theta: Float64Array }).theta.set(params.subarray(0, plan.modelSize));
  if (plan.kind === 'metasgd') (h as unknown as { alpha: Float64Array }).alpha.set(params.subarray(plan.modelSize));
  const row = new Float64Array(plan.innerSteps + 1);
  h.evalRow(task, plan.innerSteps, row);
  return row[plan.innerSteps]!;
}

describe('fused MAML meta-gradient vs finite differences of the adapted query loss (float64)', () => {
  const cases = [
    { name: 'maml relu, 1 step', plan: planOf('maml', [1, 40, 40, 1], 'relu', 'mse', 1, 0.05) },
    { name: 'maml tanh, 3 steps', plan: planOf('maml', [3, 8, 6, 2], 'tanh', 'mse', 3, 0.2) },
    { name: 'maml tanh cross-entropy, 2 steps', plan: planOf('maml', [4, 9, 5], 'tanh', 'xent', 2, 0.5) },
    { name: 'metasgd tanh, 2 steps (θ and α)', plan: planOf('metasgd', [2, 7, 3], 'tanh', 'mse', 2, 0.1) },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const rng = new Rng(c.plan.sizes.length * 101 + c.plan.innerSteps);
      const P = c.plan.modelSize;
      const meta = c.plan.kind === 'metasgd';
      const theta = Float64Array.from(Float32Array.from(randomArray(rng, P, 0.5)));
      const params = meta ? Float64Array.from([...theta, ...Float32Array.from({ length: P }, () => c.plan.innerLr * (0.5 + rng.uniform(0, 1)))]) : theta;
      const task = randomTask(rng, c.plan.sizes, c.plan.loss, 6, 9);
      const h = new FusedMlp(c.plan, Float32Array.from(params));
      const row = new Float64Array(h.trainWidth);
      h.trainRow(task, row);
      assert.equal(row.length, params.length + 2);
      const post = row[row.length - 1]!;
      assert.ok(Math.abs(post - metaObjective(c.plan, params, task)) < 1e-12 * (1 + post));
      const grad = row.subarray(0, params.length);
      const eps = 1e-6;
      const gnorm = Math.hypot(...grad);
      const dirs = [0, 1, 2].map(() => randomArray(rng, params.length));
      dirs.push(Float64Array.from(grad, (v) => v / gnorm));
      for (const d of dirs) {
        const fd =
          (metaObjective(c.plan, params.map((v, i) => v + eps * d[i]!), task) - metaObjective(c.plan, params.map((v, i) => v - eps * d[i]!), task)) / (2 * eps);
        const got = dot(grad, d);
        const err = Math.abs(got - fd) / Math.max(Math.abs(fd), 1e-3 * gnorm);
        assert.ok(err < 1e-5, `directional derivative ${got} vs finite differences ${fd} (rel err ${err})`);
      }
    });
  }

  test('fomaml returns ∇ℓ_q at θ_K and reptile θ − θ_K; both differ from maml', () => {
    const rng = new Rng(5);
    const sizes = [2, 6, 5, 1];
    const theta = Float32Array.from(randomArray(rng, parameterOffsets(sizes).size, 0.5));
    const task = randomTask(rng, sizes, 'mse', 5, 5);
    const rowOf = (kind: FusedMlpPlan['kind']) => {
      const h = new FusedMlp(planOf(kind, sizes, 'tanh', 'mse', 2, 0.3), theta);
      const row = new Float64Array(h.trainWidth);
      h.trainRow(task, row);
      return row.subarray(0, theta.length);
    };
    const maml = rowOf('maml');
    const fo = rowOf('fomaml');
    const reptile = rowOf('reptile');
    // θ_K by hand: two SGD steps on the support loss.
    const ws = new MlpWorkspace({ sizes, activation: 'tanh', loss: 'mse' });
    let th = Float64Array.from(theta);
    const g = new Float64Array(th.length);
    for (let k = 0; k < 2; k++) {
      forward(ws, th, task.support.x, task.support.n);
      loss(ws, task.support.y);
      backward(ws, th, g);
      th = th.map((v, i) => v - 0.3 * g[i]!);
    }
    reptile.forEach((v, i) => assert.ok(Math.abs(v - (theta[i]! - th[i]!)) < 1e-12));
    forward(ws, th, task.query.x, task.query.n);
    loss(ws, task.query.y);
    backward(ws, th, g);
    fo.forEach((v, i) => assert.ok(Math.abs(v - g[i]!) < 1e-12));
    const gap = Math.hypot(...maml.map((v, i) => v - fo[i]!)) / Math.hypot(...fo);
    assert.ok(gap > 1e-2, `MAML and FOMAML should differ (relative gap ${gap})`);
  });
});

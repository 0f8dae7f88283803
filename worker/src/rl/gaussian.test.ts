/**
 * The Gaussian policy's surrogate (./gaussian.ts) against central finite differences in float64:
 * its gradient, its Hessian-vector product (differences of the gradient), and ProMP's lvc
 * Hessian-vector product (differences of the gradient of −Σ c·π_θ/π_θ₀ at θ₀).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import { centralDifference64, dot64 as dot, normalArray64 as randomArray, relErr } from '@metaloop/testing/numerics';
import type { Activation } from '../fused/mlp.js';
import { GaussianPolicy } from './gaussian.js';

const SHAPES: { sizes: number[]; activation: Activation }[] = [
  { sizes: [2, 7, 5, 2], activation: 'tanh' },
  { sizes: [3, 9, 1], activation: 'tanh' },
  { sizes: [2, 6, 8, 2], activation: 'relu' },
];

describe('Gaussian policy surrogate vs finite differences (float64)', () => {
  for (const sh of SHAPES) {
    test(`${sh.activation} ${sh.sizes.join('-')}: gradient, H·v and lvc H·v`, () => {
      const rng = new Rng(sh.sizes.reduce((a, b) => a * 31 + b, 11));
      const policy = new GaussianPolicy(sh.sizes, sh.activation);
      const P = policy.size;
      const n = 9;
      const obs = randomArray(rng, n * policy.obsDim);
      const act = randomArray(rng, n * policy.actDim);
      const coeff = randomArray(rng, n, 0.3);
      const theta = randomArray(rng, P, 0.5);
      const ws = policy.workspace();
      const gradAt = (p: Float64Array, c = coeff) => {
        const g = new Float64Array(P);
        const l = policy.surrogate(ws, p, obs, act, c, n, g);
        return { g, l };
      };
      for (let trial = 0; trial < 3; trial++) {
        const v = randomArray(rng, P);
        const { g } = gradAt(theta);
        const fd = centralDifference64((p) => gradAt(p).l, theta, v);
        assert.ok(relErr(dot(g, v), fd, 1e-6) < 1e-6, `gradient·v ${dot(g, v)} vs ${fd}`);
        const u = randomArray(rng, P);
        const hv = new Float64Array(P);
        const tmp = new Float64Array(P);
        gradAt(theta);
        policy.hvp(ws, theta, act, coeff, v, hv, false, tmp);
        const fdH = centralDifference64((p) => dot(gradAt(p).g, u), theta, v);
        assert.ok(relErr(dot(hv, u), fdH, 1e-6) < 1e-5, `uᵀHv ${dot(hv, u)} vs ${fdH}`);
        // lvc: the Hessian at θ₀ of −Σ c·π_θ/π_θ₀, whose gradient is the surrogate's with coefficients c·ratio.
        const lp0 = new Float64Array(n);
        policy.mean(ws, theta, obs, n);
        policy.logProbs(ws, theta, act, lp0);
        const ratioGrad = (p: Float64Array) => {
          const lp = new Float64Array(n);
          policy.mean(ws, p, obs, n);
          policy.logProbs(ws, p, act, lp);
          return gradAt(p, coeff.map((c, r) => c * Math.exp(lp[r]! - lp0[r]!))).g;
        };
        gradAt(theta);
        const hvl = new Float64Array(P);
        policy.hvp(ws, theta, act, coeff, v, hvl, true, tmp);
        const fdL = centralDifference64((p) => dot(ratioGrad(p), u), theta, v);
        assert.ok(relErr(dot(hvl, u), fdL, 1e-6) < 1e-5, `lvc uᵀHv ${dot(hvl, u)} vs ${fdL}`);
        assert.ok(relErr(dot(hvl, u), dot(hv, u)) > 1e-3, 'the lvc term changes the curvature');
      }
    });
  }
});

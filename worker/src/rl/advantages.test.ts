/**
 * Returns, the linear feature baseline and GAE (./advantages.ts) against their definitions on a
 * hand-made batch with one episode cut short: discounted returns by the sum, the baseline's normal
 * equations, GAE(λ = 1) = G − V (the telescoping sum), GAE(λ = 0) = the one-step TD error, the
 * normalisation, and zero coefficients past an episode's end.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import { discountedReturns, fitBaseline, surrogateCoefficients } from './advantages.js';
import type { Rollouts } from './rollouts.js';

const H = 6;
const N = 3;
const O = 2;

function batch(): Rollouts {
  const rng = new Rng(8);
  const lengths = Int32Array.of(6, 3, 5);
  const obs = new Float64Array(H * N * O);
  const rew = new Float64Array(H * N);
  for (let t = 0; t < H; t++) {
    for (let e = 0; e < N; e++) {
      if (t >= lengths[e]!) continue;
      for (let i = 0; i < O; i++) obs[(t * N + e) * O + i] = rng.normal();
      rew[t * N + e] = rng.normal() - 1;
    }
  }
  return { episodes: N, horizon: H, obs, act: new Float64Array(H * N * 2), rew, lengths, meanReturn: 0 };
}

const features = (b: Rollouts, t: number, e: number) => {
  const s = [b.obs[(t * N + e) * O]!, b.obs[(t * N + e) * O + 1]!];
  const u = t / 100;
  return [...s, ...s.map((x) => x * x), u, u * u, u * u * u, 1];
};

describe('advantages', () => {
  const b = batch();
  const gamma = 0.9;

  test('discounted returns: G_t = Σ_k γ^k r_{t+k} within the episode, 0 past its end', () => {
    const G = discountedReturns(b, gamma);
    for (let e = 0; e < N; e++) {
      for (let t = 0; t < H; t++) {
        let want = 0;
        for (let k = t; k < b.lengths[e]!; k++) want += gamma ** (k - t) * b.rew[k * N + e]!;
        assert.ok(Math.abs(G[t * N + e]! - want) < 1e-12, `G[${t}][${e}]`);
      }
    }
  });

  test('the baseline solves (XᵀX + reg·I) w = XᵀG over the valid steps', () => {
    const G = discountedReturns(b, gamma);
    const reg = 1e-3;
    const w = fitBaseline(b, O, G, reg, 0);
    const d = w.length;
    assert.equal(d, 2 * O + 4);
    const residual = new Float64Array(d);
    for (let e = 0; e < N; e++) {
      for (let t = 0; t < b.lengths[e]!; t++) {
        const f = features(b, t, e);
        const err = f.reduce((a, x, i) => a + x * w[i]!, 0) - G[t * N + e]!;
        f.forEach((x, i) => (residual[i] = residual[i]! + x * err));
      }
    }
    residual.forEach((r, i) => assert.ok(Math.abs(r + reg * w[i]!) < 1e-9, `normal equation ${i}: ${r + reg * w[i]!}`));
  });

  test('GAE(λ = 1) = G − V and GAE(λ = 0) = r + γV′ − V, each divided by N·T_e; 0 past the end', () => {
    const G = discountedReturns(b, gamma);
    const w = fitBaseline(b, O, G, 1e-5, 0);
    const V = (t: number, e: number) => (t < b.lengths[e]! ? features(b, t, e).reduce((a, x, i) => a + x * w[i]!, 0) : 0);
    const opts = { gamma, normalize: false, baselineReg: 1e-5, taskSeed: 0 };
    const c1 = surrogateCoefficients(b, O, { ...opts, gaeLambda: 1 });
    const c0 = surrogateCoefficients(b, O, { ...opts, gaeLambda: 0 });
    for (let e = 0; e < N; e++) {
      const T = b.lengths[e]!;
      for (let t = 0; t < H; t++) {
        const r = t * N + e;
        if (t >= T) {
          assert.equal(c1[r], 0);
          assert.equal(c0[r], 0);
          continue;
        }
        assert.ok(Math.abs(c1[r]! * N * T - (G[r]! - V(t, e))) < 1e-9, `λ=1 at ${t},${e}`);
        assert.ok(Math.abs(c0[r]! * N * T - (b.rew[r]! + gamma * V(t + 1, e) - V(t, e))) < 1e-9, `λ=0 at ${t},${e}`);
      }
    }
  });

  test('normalised advantages: zero mean and unit spread (means of per-episode means, as pytorch-maml-rl)', () => {
    const c = surrogateCoefficients(b, O, { gamma, gaeLambda: 0.95, normalize: true, baselineReg: 1e-5, taskSeed: 0 });
    let mean = 0;
    let sq = 0;
    for (let e = 0; e < N; e++) {
      const T = b.lengths[e]!;
      let m = 0;
      let s = 0;
      for (let t = 0; t < T; t++) {
        const a = c[t * N + e]! * N * T;
        m += a;
        s += a * a;
      }
      mean += m / T / N;
      sq += s / T / N;
    }
    assert.ok(Math.abs(mean) < 1e-12, `mean ${mean}`);
    assert.ok(Math.abs(Math.sqrt(sq) - 1) < 1e-6, `std ${Math.sqrt(sq)}`);
  });
});

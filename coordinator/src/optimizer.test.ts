import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '@metaloop/shared';
import { Adam, Sgd } from './optimizer.js';

const opts = { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

function randomGrads(seed: number, steps: number, n: number): Float64Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: steps }, () => Float64Array.from({ length: n }, () => rng.normal() * (1 + rng.next() * 10)));
}

/** Adam as PyTorch writes it (torch.optim.Adam, amsgrad=False), all in float64. */
function referenceAdam(theta0: Float64Array, grads: Float64Array[], o = opts): Float64Array {
  const theta = Float64Array.from(theta0);
  const m = new Float64Array(theta.length);
  const v = new Float64Array(theta.length);
  grads.forEach((g, k) => {
    const t = k + 1;
    const bc1 = 1 - o.beta1 ** t;
    const bc2 = 1 - o.beta2 ** t;
    for (let i = 0; i < theta.length; i++) {
      m[i] = m[i]! * o.beta1 + g[i]! * (1 - o.beta1);
      v[i] = v[i]! * o.beta2 + g[i]! * g[i]! * (1 - o.beta2);
      const denom = Math.sqrt(v[i]!) / Math.sqrt(bc2) + o.epsilon;
      theta[i] = theta[i]! - (o.lr / bc1) * (m[i]! / denom);
    }
  });
  return theta;
}

describe('Adam', () => {
  it('matches a float64 reference (PyTorch formulation) over 200 steps', () => {
    const n = 64;
    const rng = new Rng(7);
    const theta0 = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
    const grads = randomGrads(11, 200, n);
    const adam = new Adam(n, opts);
    const params = Float32Array.from(theta0);
    for (const g of grads) adam.step(params, g);
    const ref = referenceAdam(Float64Array.from(theta0), grads);
    for (let i = 0; i < n; i++) {
      // float32 storage of θ rounds every step: ~200 roundings of ≤ 6e-8 relative each.
      assert.ok(Math.abs(params[i]! - ref[i]!) <= 2e-5 * Math.max(1, Math.abs(ref[i]!)), `param ${i}: ${params[i]} vs ${ref[i]}`);
    }
    assert.equal(adam.t, 200);
  });

  it('first step moves every parameter by about lr against the gradient sign (bias correction)', () => {
    const adam = new Adam(3, opts);
    const p = new Float32Array([0.5, 0.5, 0.5]);
    adam.step(p, new Float64Array([1e-3, -4, 250]));
    assert.ok(Math.abs(p[0]! - (0.5 - 1e-3)) < 1e-7);
    assert.ok(Math.abs(p[1]! - (0.5 + 1e-3)) < 1e-7);
    assert.ok(Math.abs(p[2]! - (0.5 - 1e-3)) < 1e-7);
  });

  it('is deterministic and resumes bit for bit from its state', () => {
    const n = 32;
    const grads = randomGrads(3, 40, n);
    const a = new Adam(n, opts);
    const pa = new Float32Array(n).fill(0.25);
    for (const g of grads) a.step(pa, g);

    const b = new Adam(n, opts);
    const pb = new Float32Array(n).fill(0.25);
    for (const g of grads.slice(0, 15)) b.step(pb, g);
    const c = new Adam(n, opts, b.state());
    const pc = Float32Array.from(pb);
    for (const g of grads.slice(15)) c.step(pc, g);

    assert.deepEqual(Buffer.from(pc.buffer), Buffer.from(pa.buffer));
    assert.equal(c.t, 40);
  });

  it('refuses mismatched sizes', () => {
    const a = new Adam(4, opts);
    assert.throws(() => a.step(new Float32Array(4), new Float64Array(5)), /Adam of 4 values/);
  });
});

describe('SGD', () => {
  it('θ ← θ − lr·g', () => {
    const s = new Sgd(2, 0.1);
    const p = new Float32Array([1, 2]);
    s.step(p, new Float64Array([1, -2]));
    assert.equal(p[0], Math.fround(0.9));
    assert.equal(p[1], Math.fround(2.2));
    assert.equal(s.t, 1);
  });
});

/**
 * Finite-difference helpers for the worker's numerical tests (float32 tensors, seeded inputs).
 */
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';

/** A seeded tensor with entries uniform in [lo, hi). */
export function randomTensor(rng: Rng, shape: number[], lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.uniform(lo, hi);
  return tf.tensor(data, shape);
}

export interface HvpCheck {
  analytic: number;
  numeric: number;
  relErr: number;
}

/** |a − b| / max(|a|, |b|, floor). */
export function relErr(a: number, b: number, floor = 1e-3): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), floor);
}

/**
 * Second derivative check of a scalar f at x along random directions u, v:
 * analytic vᵀ∇(uᵀ∇f) by nested tf.grad against the central difference of uᵀ∇f along v.
 */
export function checkSecondDerivative(
  f: (x: tf.Tensor) => tf.Scalar,
  x: tf.Tensor,
  rng: Rng,
  h = 1e-3,
  floor = 1e-3,
): HvpCheck {
  return tf.tidy(() => {
    const u = randomTensor(rng, x.shape);
    const v = randomTensor(rng, x.shape);
    const g = tf.grad(f);
    const gu = (z: tf.Tensor): tf.Scalar => tf.sum(tf.mul(g(z), u));
    const analytic = tf.sum(tf.mul(tf.grad(gu)(x), v)).dataSync()[0]!;
    const plus = gu(tf.add(x, tf.mul(v, h))).dataSync()[0]!;
    const minus = gu(tf.sub(x, tf.mul(v, h))).dataSync()[0]!;
    const numeric = (plus - minus) / (2 * h);
    return { analytic, numeric, relErr: relErr(analytic, numeric, floor) };
  });
}

/** First derivative check of a scalar f at x along a random direction v. */
export function checkFirstDerivative(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor, rng: Rng, h = 1e-3): HvpCheck {
  return tf.tidy(() => {
    const v = randomTensor(rng, x.shape);
    const analytic = tf.sum(tf.mul(tf.grad(f)(x), v)).dataSync()[0]!;
    const plus = f(tf.add(x, tf.mul(v, h))).dataSync()[0]!;
    const minus = f(tf.sub(x, tf.mul(v, h))).dataSync()[0]!;
    const numeric = (plus - minus) / (2 * h);
    return { analytic, numeric, relErr: relErr(analytic, numeric) };
  });
}

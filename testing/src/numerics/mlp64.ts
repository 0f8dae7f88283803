/**
 * Float64 reference of the MLP, its MSE loss, the SGD inner loop and the MAML objective in plain
 * JS (test-only). Parameters are flat, in `paramLayout` order: l0.w [in,out] row-major, l0.b, …
 */

export interface Mlp64 {
  readonly sizes: readonly number[];
  readonly activation: 'relu' | 'tanh';
}

interface Cache {
  /** Layer inputs h_0 = x, h_1, …, h_L = prediction. */
  readonly h: Float64Array[];
  /** Pre-activations z_1 … z_{L} (z of the last layer = prediction). */
  readonly z: Float64Array[];
}

function offsets(m: Mlp64): { w: number; b: number }[] {
  const out: { w: number; b: number }[] = [];
  let off = 0;
  for (let l = 0; l + 1 < m.sizes.length; l++) {
    const fin = m.sizes[l]!;
    const fout = m.sizes[l + 1]!;
    out.push({ w: off, b: off + fin * fout });
    off += fin * fout + fout;
  }
  return out;
}

export function paramCount(m: Mlp64): number {
  let n = 0;
  for (let l = 0; l + 1 < m.sizes.length; l++) n += m.sizes[l]! * m.sizes[l + 1]! + m.sizes[l + 1]!;
  return n;
}

function forward(m: Mlp64, p: Float64Array, x: ArrayLike<number>, n: number): Cache {
  const offs = offsets(m);
  const h: Float64Array[] = [Float64Array.from(x)];
  const z: Float64Array[] = [];
  for (let l = 0; l < offs.length; l++) {
    const fin = m.sizes[l]!;
    const fout = m.sizes[l + 1]!;
    const { w, b } = offs[l]!;
    const hin = h[l]!;
    const zl = new Float64Array(n * fout);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < fout; j++) {
        let s = p[b + j]!;
        for (let i = 0; i < fin; i++) s += hin[r * fin + i]! * p[w + i * fout + j]!;
        zl[r * fout + j] = s;
      }
    }
    z.push(zl);
    const last = l + 1 === offs.length;
    h.push(last ? zl : zl.map((v) => (m.activation === 'relu' ? Math.max(0, v) : Math.tanh(v))));
  }
  return { h, z };
}

/** Mean squared error over all outputs. */
export function mseLoss(m: Mlp64, p: Float64Array, x: ArrayLike<number>, y: ArrayLike<number>, n: number): number {
  const pred = forward(m, p, x, n).h[m.sizes.length - 1]!;
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += (pred[i]! - y[i]!) ** 2;
  return s / pred.length;
}

/** Gradient of the MSE loss w.r.t. the flat parameters (backprop). */
export function mseGrad(m: Mlp64, p: Float64Array, x: ArrayLike<number>, y: ArrayLike<number>, n: number): Float64Array {
  const offs = offsets(m);
  const { h, z } = forward(m, p, x, n);
  const L = offs.length;
  const pred = h[L]!;
  const g = new Float64Array(p.length);
  let delta = new Float64Array(pred.length);
  for (let i = 0; i < pred.length; i++) delta[i] = (2 * (pred[i]! - y[i]!)) / pred.length;
  for (let l = L - 1; l >= 0; l--) {
    const fin = m.sizes[l]!;
    const fout = m.sizes[l + 1]!;
    const { w, b } = offs[l]!;
    const hin = h[l]!;
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < fout; j++) {
        const d = delta[r * fout + j]!;
        g[b + j]! += d;
        for (let i = 0; i < fin; i++) g[w + i * fout + j]! += hin[r * fin + i]! * d;
      }
    }
    if (l === 0) break;
    const prev = new Float64Array(n * fin);
    const zprev = z[l - 1]!;
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < fin; i++) {
        let s = 0;
        for (let j = 0; j < fout; j++) s += delta[r * fout + j]! * p[w + i * fout + j]!;
        const zz = zprev[r * fin + i]!;
        const dact = m.activation === 'relu' ? (zz > 0 ? 1 : 0) : 1 - Math.tanh(zz) ** 2;
        prev[r * fin + i] = s * dact;
      }
    }
    delta = prev;
  }
  return g;
}

export interface Task64 {
  readonly xs: ArrayLike<number>;
  readonly ys: ArrayLike<number>;
  readonly xq: ArrayLike<number>;
  readonly yq: ArrayLike<number>;
  readonly k: number;
  readonly q: number;
}

/** θ after `steps` SGD steps on the support set. */
export function adapt64(m: Mlp64, theta: Float64Array, t: Task64, steps: number, lr: number): Float64Array {
  let p = Float64Array.from(theta);
  for (let s = 0; s < steps; s++) {
    const g = mseGrad(m, p, t.xs, t.ys, t.k);
    p = p.map((v, i) => v - lr * g[i]!);
  }
  return p;
}

/** The MAML objective: query loss after the inner loop, as a function of θ. */
export function metaLoss64(m: Mlp64, theta: Float64Array, t: Task64, steps: number, lr: number): number {
  return mseLoss(m, adapt64(m, theta, t, steps, lr), t.xq, t.yq, t.q);
}

/** Central finite difference of the MAML objective along `dir`. */
export function metaDirectional64(m: Mlp64, theta: Float64Array, t: Task64, steps: number, lr: number, dir: Float64Array, eps = 1e-6): number {
  const plus = theta.map((v, i) => v + eps * dir[i]!);
  const minus = theta.map((v, i) => v - eps * dir[i]!);
  return (metaLoss64(m, plus, t, steps, lr) - metaLoss64(m, minus, t, steps, lr)) / (2 * eps);
}

/** The first-order (FOMAML) meta-gradient: ∇L_query at the adapted parameters. */
export function firstOrderGrad64(m: Mlp64, theta: Float64Array, t: Task64, steps: number, lr: number): Float64Array {
  return mseGrad(m, adapt64(m, theta, t, steps, lr), t.xq, t.yq, t.q);
}

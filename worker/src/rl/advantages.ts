/**
 * From a batch of rollouts to the coefficients of the policy-gradient surrogate: discounted
 * returns, the linear feature baseline of Duan et al. 2016 fitted to them (per task and per batch),
 * GAE(γ, λ) advantages, their normalisation, and c_r = Â_r / (N · T_e) so that
 * −Σ_r c_r log π(a_r | s_r) is pytorch-maml-rl's reinforce_loss (per-episode mean over its steps,
 * then the mean over episodes).
 *
 * Baseline (pytorch-maml-rl `maml_rl/baseline.py`, garage's LinearFeatureBaseline): features
 * f = [s, s², t/100, (t/100)², (t/100)³, 1] of every step of every episode, weights w solving
 * (XᵀX + reg·I) w = Xᵀ G by Cholesky in float64, reg ×10 up to 4 more times while that fails.
 * GAE: V_t = f_t·w (0 past the end), δ_t = r_t + γ V_{t+1} − V_t, A_t = δ_t + γλ A_{t+1}.
 * Normalisation (pytorch-maml-rl's weighted_normalize): A − mean, divided by (std + 1e-8), where
 * the mean and the mean square are averages over episodes of per-episode means.
 */
import { RlError } from '../errors.js';
import type { Rollouts } from './rollouts.js';

export interface AdvantageOptions {
  readonly gamma: number;
  readonly gaeLambda: number;
  readonly normalize: boolean;
  readonly baselineReg: number;
  /** For error messages. */
  readonly taskSeed: number;
}

/** G_t = Σ_k γ^k r_{t+k} per episode, time-major like the rollouts (0 past an episode's end). */
export function discountedReturns(b: Rollouts, gamma: number): Float64Array {
  const N = b.episodes;
  const out = new Float64Array(b.horizon * N);
  for (let e = 0; e < N; e++) {
    let g = 0;
    for (let t = b.lengths[e]! - 1; t >= 0; t--) {
      g = b.rew[t * N + e]! + gamma * g;
      out[t * N + e] = g;
    }
  }
  return out;
}

/** The baseline's feature vector of row (t, e) into f[0..2·obsDim + 4). */
function features(b: Rollouts, obsDim: number, t: number, e: number, f: Float64Array): void {
  const o = (t * b.episodes + e) * obsDim;
  for (let i = 0; i < obsDim; i++) {
    const s = b.obs[o + i]!;
    f[i] = s;
    f[obsDim + i] = s * s;
  }
  const u = t / 100;
  f[2 * obsDim] = u;
  f[2 * obsDim + 1] = u * u;
  f[2 * obsDim + 2] = u * u * u;
  f[2 * obsDim + 3] = 1;
}

/** Solve M x = y for a symmetric positive definite M (d × d, row-major) by Cholesky; null when it is not. */
export function choleskySolve(M: Float64Array, y: Float64Array, d: number): Float64Array | null {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = M[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) return null;
        L[i * d + i] = Math.sqrt(s);
      } else {
        L[i * d + j] = s / L[j * d + j]!;
      }
    }
  }
  const x = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = y[i]!;
    for (let k = 0; k < i; k++) s -= L[i * d + k]! * x[k]!;
    x[i] = s / L[i * d + i]!;
  }
  for (let i = d - 1; i >= 0; i--) {
    let s = x[i]!;
    for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * x[k]!;
    x[i] = s / L[i * d + i]!;
  }
  return x.every(Number.isFinite) ? x : null;
}

/** The baseline's weights fitted to the returns of every step of the batch. */
export function fitBaseline(b: Rollouts, obsDim: number, returns: Float64Array, reg: number, taskSeed: number): Float64Array {
  const d = 2 * obsDim + 4;
  const xtx = new Float64Array(d * d);
  const xty = new Float64Array(d);
  const f = new Float64Array(d);
  const N = b.episodes;
  for (let t = 0; t < b.horizon; t++) {
    for (let e = 0; e < N; e++) {
      if (t >= b.lengths[e]!) continue;
      features(b, obsDim, t, e, f);
      const g = returns[t * N + e]!;
      for (let i = 0; i < d; i++) {
        const fi = f[i]!;
        xty[i] = xty[i]! + fi * g;
        for (let j = 0; j <= i; j++) xtx[i * d + j] = xtx[i * d + j]! + fi * f[j]!;
      }
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) xtx[j * d + i] = xtx[i * d + j]!;
  let r = reg;
  for (let attempt = 0; attempt < 5; attempt++, r *= 10) {
    const m = Float64Array.from(xtx);
    for (let i = 0; i < d; i++) m[i * d + i] = m[i * d + i]! + r;
    const w = choleskySolve(m, xty, d);
    if (w) return w;
  }
  throw new RlError(`the linear feature baseline's normal equations stay singular up to ridge ${r / 10} (non-finite rollouts?)`, taskSeed);
}

/** The surrogate's coefficients c_r (time-major rows) of a batch; see the file comment. */
export function surrogateCoefficients(b: Rollouts, obsDim: number, o: AdvantageOptions): Float64Array {
  const N = b.episodes;
  const H = b.horizon;
  const returns = discountedReturns(b, o.gamma);
  const w = fitBaseline(b, obsDim, returns, o.baselineReg, o.taskSeed);
  const d = w.length;
  const f = new Float64Array(d);
  const value = (t: number, e: number) => {
    if (t >= b.lengths[e]!) return 0;
    features(b, obsDim, t, e, f);
    let v = 0;
    for (let i = 0; i < d; i++) v += f[i]! * w[i]!;
    return v;
  };
  const adv = new Float64Array(H * N);
  for (let e = 0; e < N; e++) {
    let a = 0;
    let next = 0;
    for (let t = b.lengths[e]! - 1; t >= 0; t--) {
      const v = value(t, e);
      a = b.rew[t * N + e]! + o.gamma * next - v + o.gamma * o.gaeLambda * a;
      adv[t * N + e] = a;
      next = v;
    }
  }
  const perEpisodeMean = (x: (t: number, e: number) => number) => {
    let sum = 0;
    for (let e = 0; e < N; e++) {
      let s = 0;
      for (let t = 0; t < b.lengths[e]!; t++) s += x(t, e);
      sum += s / b.lengths[e]!;
    }
    return sum / N;
  };
  if (o.normalize) {
    const mean = perEpisodeMean((t, e) => adv[t * N + e]!);
    const std = Math.sqrt(perEpisodeMean((t, e) => (adv[t * N + e]! - mean) ** 2));
    for (let e = 0; e < N; e++) for (let t = 0; t < b.lengths[e]!; t++) adv[t * N + e] = (adv[t * N + e]! - mean) / (std + 1e-8);
  }
  for (let e = 0; e < N; e++) for (let t = 0; t < b.lengths[e]!; t++) adv[t * N + e] = adv[t * N + e]! / (N * b.lengths[e]!);
  return adv;
}

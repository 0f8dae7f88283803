/**
 * The Gaussian MLP policy on the fused host MLP (fused/mlp.ts: float64 loops, Pearlmutter's
 * R-operator), with the policy-gradient surrogate over fixed rollouts, its gradient and its exact
 * Hessian-vector product.
 *
 * θ = [mean network (l0.w, l0.b, …, a linear output), ρ = log_std [A]]; σ = e^ρ. For rows r
 * (observation s_r, action a_r) with coefficients c_r (advantage / (episodes · episode length)):
 *   L(θ) = −Σ_r c_r log π_θ(a_r | s_r),  log π = Σ_j −½ z_j² − ρ_j − ½ log 2π,  z = (a − μ(s)) ⊙ e^−ρ
 *   ∂L/∂μ_rj = −c_r (a_rj − μ_rj) e^−2ρ_j  (the output error fed to the network's backward pass)
 *   ∂L/∂ρ_j = −Σ_r c_r (z_rj² − 1)
 * H·v for v = (V, v_ρ), with R μ the network's R-forward along V:
 *   R e_rj = c_r e^−2ρ_j R μ_rj + 2 c_r (a_rj − μ_rj) e^−2ρ_j v_ρj  (then the network's R-backward)
 *   R ∂L/∂ρ_j = Σ_r c_r (2 (a_rj − μ_rj) e^−2ρ_j R μ_rj + 2 z_rj² v_ρj)
 * ProMP's low-variance curvature (lvc) surrogate −Σ c_r π_θ/⊥π has the same gradient at θ and the
 * Hessian H − Σ_r c_r g_r g_rᵀ with g_r = ∇ log π_r; g_r·v = Σ_j (a_rj − μ_rj) e^−2ρ_j R μ_rj +
 * (z_rj² − 1) v_ρj, so the extra term is one more backward pass with coefficients c_r (g_r·v).
 * Checked against central finite differences in float64 (gaussian.test.ts).
 */
import { MlpWorkspace, backward, forward, parameterOffsets, rBackward, rForward, type Activation } from '../fused/mlp.js';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

export class GaussianPolicy {
  /** Widths [observations, hidden…, actions]. */
  readonly sizes: readonly number[];
  readonly obsDim: number;
  readonly actDim: number;
  /** Size of the mean network's part of θ; ρ follows it. */
  readonly netSize: number;
  /** Size of θ. */
  readonly size: number;

  constructor(
    sizes: readonly number[],
    readonly activation: Activation,
  ) {
    this.sizes = [...sizes];
    this.obsDim = sizes[0]!;
    this.actDim = sizes[sizes.length - 1]!;
    this.netSize = parameterOffsets(sizes).size;
    this.size = this.netSize + this.actDim;
  }

  /** A workspace for passes over rows (its loss kind is unused: this file supplies the policy's). */
  workspace(): MlpWorkspace {
    return new MlpWorkspace({ sizes: this.sizes, activation: this.activation, loss: 'mse' });
  }

  /** μ of n observation rows (row-major n × obsDim): runs the forward pass, returns ws' output (n × actDim). */
  mean(ws: MlpWorkspace, theta: Float64Array, obs: Float64Array, n: number): Float64Array {
    forward(ws, theta, obs, n);
    return ws.h[ws.layers - 1]!;
  }

  /** e^−2ρ_j per action dimension: the precisions 1/σ_j². */
  private precisions(theta: Float64Array): Float64Array {
    const out = new Float64Array(this.actDim);
    for (let j = 0; j < this.actDim; j++) out[j] = Math.exp(-2 * theta[this.netSize + j]!);
    return out;
  }

  /** log π(a_r | s_r) of the rows of the last forward pass into out[0..n). */
  logProbs(ws: MlpWorkspace, theta: Float64Array, act: Float64Array, out: Float64Array): void {
    const A = this.actDim;
    const mu = ws.h[ws.layers - 1]!;
    for (let r = 0; r < ws.n; r++) {
      let lp = 0;
      for (let j = 0; j < A; j++) {
        const rho = theta[this.netSize + j]!;
        const z = (act[r * A + j]! - mu[r * A + j]!) * Math.exp(-rho);
        lp += -0.5 * z * z - rho - HALF_LOG_2PI;
      }
      out[r] = lp;
    }
  }

  /**
   * L(θ) = −Σ_r c_r log π(a_r | s_r) over n rows, and its gradient into g (θ's layout). Leaves ws
   * holding this pass (forward and δ), which hvp() needs.
   */
  surrogate(ws: MlpWorkspace, theta: Float64Array, obs: Float64Array, act: Float64Array, coeff: Float64Array, n: number, g: Float64Array): number {
    forward(ws, theta, obs, n);
    const A = this.actDim;
    const P = this.netSize;
    const mu = ws.h[ws.layers - 1]!;
    const e = ws.d[ws.layers - 1]!;
    const inv2s = this.precisions(theta);
    let loss = 0;
    for (let j = 0; j < A; j++) g[P + j] = 0;
    for (let r = 0; r < n; r++) {
      const c = coeff[r]!;
      for (let j = 0; j < A; j++) {
        const k = r * A + j;
        const rho = theta[P + j]!;
        const inv2 = inv2s[j]!;
        const diff = act[k]! - mu[k]!;
        const z2 = diff * diff * inv2;
        loss -= c * (-0.5 * z2 - rho - HALF_LOG_2PI);
        e[k] = -c * diff * inv2;
        g[P + j] = g[P + j]! - c * (z2 - 1);
      }
    }
    backward(ws, theta, g);
    return loss;
  }

  /**
   * out = H·v, H the Hessian of the surrogate at θ (lvc: of ProMP's surrogate, see the file
   * comment), after surrogate() on the same θ, rows and coefficients in ws. `tmp`: θ-sized scratch
   * (lvc only). Overwrites ws' δ (a further hvp needs a fresh surrogate()).
   */
  hvp(ws: MlpWorkspace, theta: Float64Array, act: Float64Array, coeff: Float64Array, v: Float64Array, out: Float64Array, lvc: boolean, tmp: Float64Array): void {
    const n = ws.n;
    const A = this.actDim;
    const P = this.netSize;
    const L = ws.layers;
    rForward(ws, theta, v);
    const mu = ws.h[L - 1]!;
    const rmu = ws.rh[L - 1]!;
    const re = ws.rd[L - 1]!;
    const e = ws.d[L - 1]!;
    const rhoPart = new Float64Array(A);
    const inv2s = this.precisions(theta);
    // β_r = c_r (g_r·v) for the lvc term (into e once R-backward no longer needs δ).
    const beta = lvc ? new Float64Array(n) : null;
    for (let r = 0; r < n; r++) {
      const c = coeff[r]!;
      let gv = 0;
      for (let j = 0; j < A; j++) {
        const k = r * A + j;
        const inv2 = inv2s[j]!;
        const diff = act[k]! - mu[k]!;
        const vr = v[P + j]!;
        re[k] = c * inv2 * rmu[k]! + 2 * c * diff * inv2 * vr;
        const z2 = diff * diff * inv2;
        rhoPart[j] = rhoPart[j]! + c * (2 * diff * inv2 * rmu[k]! + 2 * z2 * vr);
        gv += diff * inv2 * rmu[k]! + (z2 - 1) * vr;
      }
      if (beta) beta[r] = c * gv;
    }
    rBackward(ws, theta, v, out);
    for (let j = 0; j < A; j++) out[P + j] = rhoPart[j]!;
    if (!beta) return;
    // + ∇(−Σ β_r log π_r): the output error −β_r (a − μ) e^−2ρ, then a plain backward pass.
    for (let j = 0; j < A; j++) tmp[P + j] = 0;
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < A; j++) {
        const k = r * A + j;
        const inv2 = inv2s[j]!;
        const diff = act[k]! - mu[k]!;
        e[k] = -beta[r]! * diff * inv2;
        tmp[P + j] = tmp[P + j]! - beta[r]! * (diff * diff * inv2 - 1);
      }
    }
    backward(ws, theta, tmp);
    for (let i = 0; i < this.size; i++) out[i] = out[i]! + tmp[i]!;
  }
}

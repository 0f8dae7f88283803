/**
 * A fused MLP for the host: forward, gradient and Hessian-vector product of a dense network
 * (dense → relu | tanh → … → dense) under MSE or softmax cross-entropy, in float64 typed-array
 * loops with no tfjs in between.
 *
 * Why: a second-order MAML pass through a small MLP (sinusoid: 1-40-40-1, 10 + 10 points) is
 * ~3 MFLOP spread over ~340 tfjs kernel launches; the engine's bookkeeping per launch (tape
 * records, tidy scopes, dataId maps, shape checks) costs more than the arithmetic. Here one task's
 * whole pass is a handful of tight loops.
 *
 * The maths (row-major activations, n rows; layer i = 1..L has W_i [a, b], b_i [b]):
 *   z_i = h_{i−1} W_i + b_i,  h_i = σ(z_i) (i < L),  ŷ = z_L,  e = ∂ℓ/∂ŷ
 *   δ_L = e,  s_{i−1} = δ_i W_iᵀ,  δ_{i−1} = s_{i−1} ⊙ σ'(z_{i−1}),  ∂W_i = h_{i−1}ᵀ δ_i,  ∂b_i = Σ_rows δ_i
 * and the Hessian-vector product H·v by Pearlmutter's R-operator (forward-over-reverse), with
 * v = (V_i, c_i) laid out like θ and R(·) the directional derivative along v:
 *   R z_i = R h_{i−1} W_i + h_{i−1} V_i + c_i (R h_0 = 0),  R h_i = σ'(z_i) ⊙ R z_i
 *   R δ_L = R e (MSE: (2/nC)·R ŷ; xent: (1/n)·Σy·(p ⊙ R ŷ − p·⟨p, R ŷ⟩))
 *   R ∂W_i = R h_{i−1}ᵀ δ_i + h_{i−1}ᵀ R δ_i,  R ∂b_i = Σ_rows R δ_i
 *   R δ_{i−1} = (R δ_i W_iᵀ + δ_i V_iᵀ) ⊙ σ'(z_{i−1}) + s_{i−1} ⊙ σ''(z_{i−1}) ⊙ R z_{i−1}
 * relu: σ'(z) = [z > 0] (0 at 0, as tfjs' Relu gradient), σ'' = 0; tanh: σ' = 1 − h², σ'' = −2h(1 − h²).
 * Checked against central finite differences in float64 (./mlp.test.ts).
 */

export type Activation = 'relu' | 'tanh';
export type FusedLoss = 'mse' | 'xent';

export interface MlpShape {
  /** Widths [inputs, hidden..., outputs]. */
  readonly sizes: readonly number[];
  readonly activation: Activation;
  readonly loss: FusedLoss;
}

/** Offsets of W_i and b_i in θ's flat layout ([l0.w, l0.b, l1.w, l1.b, …]). */
export function parameterOffsets(sizes: readonly number[]): { w: number[]; b: number[]; size: number } {
  const w: number[] = [];
  const b: number[] = [];
  let off = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    w.push(off);
    off += sizes[i]! * sizes[i + 1]!;
    b.push(off);
    off += sizes[i + 1]!;
  }
  return { w, b, size: off };
}

/**
 * Activations and their derivatives for one set of n rows. Layer arrays are indexed 0..L−1 for
 * layers 1..L (z[0] is the first layer's pre-activation).
 */
export class MlpWorkspace {
  readonly shape: MlpShape;
  readonly layers: number;
  readonly offsets: { w: number[]; b: number[]; size: number };
  n = 0;
  z: Float64Array[] = [];
  h: Float64Array[] = [];
  /** δ_i = ∂ℓ/∂z_i. */
  d: Float64Array[] = [];
  /** s_i = δ_{i+1} W_{i+1}ᵀ (∂ℓ/∂h_i), kept for tanh's σ'' term. */
  s: Float64Array[] = [];
  rz: Float64Array[] = [];
  rh: Float64Array[] = [];
  rd: Float64Array[] = [];
  /** The input rows as float64 (h_0). */
  x = new Float64Array(0);
  /** The targets of the last loss() call. */
  y = new Float64Array(0);
  private capacity = 0;

  constructor(shape: MlpShape) {
    this.shape = shape;
    this.layers = shape.sizes.length - 1;
    this.offsets = parameterOffsets(shape.sizes);
  }

  /** Make room for n rows. */
  reserve(n: number): void {
    this.n = n;
    if (n <= this.capacity) return;
    const sizes = this.shape.sizes;
    const mk = () => Array.from({ length: this.layers }, (_, i) => new Float64Array(n * sizes[i + 1]!));
    this.z = mk();
    this.h = mk();
    this.d = mk();
    this.s = mk();
    this.rz = mk();
    this.rh = mk();
    this.rd = mk();
    this.x = new Float64Array(n * sizes[0]!);
    this.y = new Float64Array(n * sizes[this.layers]!);
    this.capacity = n;
  }
}

/*
 * The loops below keep running sums in locals (8 outputs of a row at a time in dense, 4 partial
 * sums per dot product in denseT): a single `acc += a·b` chain is bound by the add's latency, and
 * a read-modify-write of the output per multiply-add by memory traffic. Zero inputs (relu) and
 * masked outputs are skipped.
 */

/** out[n × b] = inp[n × a] · θ[wOff: a × b] + θ[bOff: b]; bOff < 0: out += inp · θ[wOff…]. */
function dense(inp: Float64Array, n: number, a: number, b: number, theta: Float64Array, wOff: number, bOff: number, out: Float64Array): void {
  const b8 = b - (b % 8);
  for (let r = 0; r < n; r++) {
    const o = r * b;
    const ir = r * a;
    let j = 0;
    for (; j < b8; j += 8) {
      const init = bOff < 0 ? out : theta;
      const k = bOff < 0 ? o + j : bOff + j;
      let s0 = init[k]!, s1 = init[k + 1]!, s2 = init[k + 2]!, s3 = init[k + 3]!;
      let s4 = init[k + 4]!, s5 = init[k + 5]!, s6 = init[k + 6]!, s7 = init[k + 7]!;
      for (let i = 0; i < a; i++) {
        const v = inp[ir + i]!;
        if (v === 0) continue;
        const w = wOff + i * b + j;
        s0 += v * theta[w]!;
        s1 += v * theta[w + 1]!;
        s2 += v * theta[w + 2]!;
        s3 += v * theta[w + 3]!;
        s4 += v * theta[w + 4]!;
        s5 += v * theta[w + 5]!;
        s6 += v * theta[w + 6]!;
        s7 += v * theta[w + 7]!;
      }
      out[o + j] = s0;
      out[o + j + 1] = s1;
      out[o + j + 2] = s2;
      out[o + j + 3] = s3;
      out[o + j + 4] = s4;
      out[o + j + 5] = s5;
      out[o + j + 6] = s6;
      out[o + j + 7] = s7;
    }
    for (; j < b; j++) {
      let s0 = bOff < 0 ? out[o + j]! : theta[bOff + j]!;
      for (let i = 0; i < a; i++) s0 += inp[ir + i]! * theta[wOff + i * b + j]!;
      out[o + j] = s0;
    }
  }
}

/** Σ_j d[dr + j] · θ[wr + j] for j < b, four partial sums. */
function dot(d: Float64Array, dr: number, theta: Float64Array, wr: number, b: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let j = 0;
  for (; j + 4 <= b; j += 4) {
    s0 += d[dr + j]! * theta[wr + j]!;
    s1 += d[dr + j + 1]! * theta[wr + j + 1]!;
    s2 += d[dr + j + 2]! * theta[wr + j + 2]!;
    s3 += d[dr + j + 3]! * theta[wr + j + 3]!;
  }
  for (; j < b; j++) s0 += d[dr + j]! * theta[wr + j]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * out[n × a] = d[n × b] · θ[wOff: a × b]ᵀ (add: out += …). With a mask (relu: the pre-activation
 * z), only where mask > 0; elsewhere out is set to 0 (left alone when adding).
 */
function denseT(d: Float64Array, n: number, a: number, b: number, theta: Float64Array, wOff: number, out: Float64Array, add: boolean, mask: Float64Array | null): void {
  for (let r = 0; r < n; r++) {
    const dr = r * b;
    const o = r * a;
    for (let i = 0; i < a; i++) {
      if (mask !== null && !(mask[o + i]! > 0)) {
        if (!add) out[o + i] = 0;
        continue;
      }
      const acc = dot(d, dr, theta, wOff + i * b, b);
      out[o + i] = add ? out[o + i]! + acc : acc;
    }
  }
}

/** g[wOff: a × b] += inpᵀ d, g[bOff: b] += Σ_rows d unless bOff < 0 (rows two at a time; zero inputs skipped). */
function outerAcc(inp: Float64Array, d: Float64Array, n: number, a: number, b: number, g: Float64Array, wOff: number, bOff: number): void {
  for (let r = 0; bOff >= 0 && r < n; r++) {
    const dr = r * b;
    for (let j = 0; j < b; j++) g[bOff + j] = g[bOff + j]! + d[dr + j]!;
  }
  let r = 0;
  for (; r + 2 <= n; r += 2) {
    const d0 = r * b;
    const d1 = d0 + b;
    const i0 = r * a;
    const i1 = i0 + a;
    for (let i = 0; i < a; i++) {
      const v0 = inp[i0 + i]!;
      const v1 = inp[i1 + i]!;
      const gr = wOff + i * b;
      if (v0 !== 0 && v1 !== 0) {
        for (let j = 0; j < b; j++) g[gr + j] = g[gr + j]! + v0 * d[d0 + j]! + v1 * d[d1 + j]!;
      } else if (v0 !== 0) {
        for (let j = 0; j < b; j++) g[gr + j] = g[gr + j]! + v0 * d[d0 + j]!;
      } else if (v1 !== 0) {
        for (let j = 0; j < b; j++) g[gr + j] = g[gr + j]! + v1 * d[d1 + j]!;
      }
    }
  }
  for (; r < n; r++) {
    const dr = r * b;
    const ir = r * a;
    for (let i = 0; i < a; i++) {
      const v = inp[ir + i]!;
      if (v === 0) continue;
      const gr = wOff + i * b;
      for (let j = 0; j < b; j++) g[gr + j] = g[gr + j]! + v * d[dr + j]!;
    }
  }
}

/** log Σ_c exp(v[o + c]) over one row of C values, shifted by the row's max. */
function logSumExpRow(v: Float64Array, o: number, C: number): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, v[o + c]!);
  let z = 0;
  for (let c = 0; c < C; c++) z += Math.exp(v[o + c]! - m);
  return m + Math.log(z);
}

/** Load n rows of x (flattened per example) into the workspace and run the forward pass. */
export function forward(ws: MlpWorkspace, theta: Float64Array, x: Float32Array | Float64Array, n: number): void {
  ws.reserve(n);
  const sizes = ws.shape.sizes;
  const L = ws.layers;
  const x64 = ws.x;
  for (let i = 0; i < n * sizes[0]!; i++) x64[i] = x[i]!;
  const tanh = ws.shape.activation === 'tanh';
  let inp: Float64Array = x64;
  for (let l = 0; l < L; l++) {
    const a = sizes[l]!;
    const b = sizes[l + 1]!;
    const z = ws.z[l]!;
    dense(inp, n, a, b, theta, ws.offsets.w[l]!, ws.offsets.b[l]!, z);
    const h = ws.h[l]!;
    const m = n * b;
    if (l + 1 === L) {
      h.set(z.subarray(0, m));
    } else if (tanh) {
      for (let k = 0; k < m; k++) h[k] = Math.tanh(z[k]!);
    } else {
      for (let k = 0; k < m; k++) {
        const v = z[k]!;
        h[k] = v > 0 ? v : 0;
      }
    }
    inp = h;
  }
}

/**
 * Loss of the last forward pass against y (n × outputs, float32), and e = ∂ℓ/∂ŷ into d[L−1].
 * MSE: mean over all n·C elements; xent: mean over rows of −Σ_c y·log softmax(ŷ).
 */
export function loss(ws: MlpWorkspace, y: Float32Array): number {
  const n = ws.n;
  const L = ws.layers;
  const C = ws.shape.sizes[L]!;
  const out = ws.h[L - 1]!;
  const e = ws.d[L - 1]!;
  const y64 = ws.y;
  for (let k = 0; k < n * C; k++) y64[k] = y[k]!;
  if (ws.shape.loss === 'mse') {
    const c = 2 / (n * C);
    let sum = 0;
    for (let k = 0; k < n * C; k++) {
      const diff = out[k]! - y64[k]!;
      sum += diff * diff;
      e[k] = c * diff;
    }
    return sum / (n * C);
  }
  let sum = 0;
  for (let r = 0; r < n; r++) {
    const o = r * C;
    const lse = logSumExpRow(out, o, C);
    let ysum = 0;
    for (let c = 0; c < C; c++) {
      ysum += y64[o + c]!;
      sum -= y64[o + c]! * (out[o + c]! - lse);
    }
    // e = (Σy·p − y)/n with p = softmax.
    for (let c = 0; c < C; c++) e[o + c] = (ysum * Math.exp(out[o + c]! - lse) - y64[o + c]!) / n;
  }
  return sum / n;
}

/** Fraction of rows whose first arg-max of ŷ is y's first arg-max (as tfjs' argMax). */
export function accuracy(ws: MlpWorkspace, y: Float32Array): number {
  const n = ws.n;
  const C = ws.shape.sizes[ws.layers]!;
  const out = ws.h[ws.layers - 1]!;
  let hits = 0;
  for (let r = 0; r < n; r++) {
    let bp = 0;
    let by = 0;
    for (let c = 1; c < C; c++) {
      if (out[r * C + c]! > out[r * C + bp]!) bp = c;
      if (y[r * C + c]! > y[r * C + by]!) by = c;
    }
    if (bp === by) hits++;
  }
  return hits / n;
}

/** Backward pass after forward() and loss(): g (θ's layout) = ∂ℓ/∂θ; fills δ_i and s_i. */
export function backward(ws: MlpWorkspace, theta: Float64Array, g: Float64Array): void {
  const n = ws.n;
  const sizes = ws.shape.sizes;
  const tanh = ws.shape.activation === 'tanh';
  g.fill(0, 0, ws.offsets.size);
  for (let l = ws.layers - 1; l >= 0; l--) {
    const a = sizes[l]!;
    const b = sizes[l + 1]!;
    const d = ws.d[l]!;
    const inp = l === 0 ? ws.x : ws.h[l - 1]!;
    outerAcc(inp, d, n, a, b, g, ws.offsets.w[l]!, ws.offsets.b[l]!);
    if (l === 0) break;
    const s = ws.s[l - 1]!;
    // relu needs s only where z > 0 (δ is 0 elsewhere); tanh needs all of it (σ'' term).
    denseT(d, n, a, b, theta, ws.offsets.w[l]!, s, false, tanh ? null : ws.z[l - 1]!);
    const dp = ws.d[l - 1]!;
    const h = ws.h[l - 1]!;
    const m = n * a;
    if (tanh) for (let k = 0; k < m; k++) dp[k] = s[k]! * (1 - h[k]! * h[k]!);
    else {
      const z = ws.z[l - 1]!;
      for (let k = 0; k < m; k++) dp[k] = z[k]! > 0 ? s[k]! : 0;
    }
  }
}

/**
 * out = H·v, the Hessian of the last loss() at θ (after forward, loss and backward on the same
 * rows) times v (θ's layout).
 */
export function hessianVector(ws: MlpWorkspace, theta: Float64Array, v: Float64Array, out: Float64Array): void {
  rForward(ws, theta, v);
  const n = ws.n;
  const sizes = ws.shape.sizes;
  const L = ws.layers;
  // R e.
  const C = sizes[L]!;
  const ry = ws.rh[L - 1]!;
  const re = ws.rd[L - 1]!;
  if (ws.shape.loss === 'mse') {
    const c = 2 / (n * C);
    for (let k = 0; k < n * C; k++) re[k] = c * ry[k]!;
  } else {
    const out = ws.h[L - 1]!;
    const y = ws.y;
    for (let r = 0; r < n; r++) {
      const o = r * C;
      const lse = logSumExpRow(out, o, C);
      let ysum = 0;
      let pr = 0;
      for (let c = 0; c < C; c++) {
        ysum += y[o + c]!;
        pr += Math.exp(out[o + c]! - lse) * ry[o + c]!;
      }
      for (let c = 0; c < C; c++) {
        const p = Math.exp(out[o + c]! - lse);
        re[o + c] = (ysum * p * (ry[o + c]! - pr)) / n;
      }
    }
  }
  rBackward(ws, theta, v, out);
}

/**
 * The R-forward pass along v after forward() at θ: R z_i and R h_i of every layer (R ŷ in
 * rh[L−1]). Other losses (meta-RL's Gaussian policy, rl/gaussian.ts) compute their own R e
 * into rd[L−1] from it and call rBackward().
 */
export function rForward(ws: MlpWorkspace, theta: Float64Array, v: Float64Array): void {
  const n = ws.n;
  const sizes = ws.shape.sizes;
  const L = ws.layers;
  const tanh = ws.shape.activation === 'tanh';
  const { w: wOffs, b: bOffs } = ws.offsets;
  for (let l = 0; l < L; l++) {
    const a = sizes[l]!;
    const b = sizes[l + 1]!;
    const rz = ws.rz[l]!;
    dense(l === 0 ? ws.x : ws.h[l - 1]!, n, a, b, v, wOffs[l]!, bOffs[l]!, rz);
    // rz += R h_{l−1} · W_l
    if (l > 0) dense(ws.rh[l - 1]!, n, a, b, theta, wOffs[l]!, -1, rz);
    const rh = ws.rh[l]!;
    const m = n * b;
    if (l + 1 === L) rh.set(rz.subarray(0, m));
    else if (tanh) {
      const h = ws.h[l]!;
      for (let k = 0; k < m; k++) rh[k] = (1 - h[k]! * h[k]!) * rz[k]!;
    } else {
      const z = ws.z[l]!;
      for (let k = 0; k < m; k++) rh[k] = z[k]! > 0 ? rz[k]! : 0;
    }
  }
}

/**
 * The R-backward pass: out (θ's layout, the network's part) = H·v given R e in rd[L−1], after
 * forward(), the loss's δ in d[L−1] with backward(), and rForward() along v, all at θ.
 */
export function rBackward(ws: MlpWorkspace, theta: Float64Array, v: Float64Array, out: Float64Array): void {
  const n = ws.n;
  const sizes = ws.shape.sizes;
  const L = ws.layers;
  const tanh = ws.shape.activation === 'tanh';
  const { w: wOffs, b: bOffs } = ws.offsets;
  out.fill(0, 0, ws.offsets.size);
  for (let l = L - 1; l >= 0; l--) {
    const a = sizes[l]!;
    const b = sizes[l + 1]!;
    const d = ws.d[l]!;
    const rd = ws.rd[l]!;
    outerAcc(l === 0 ? ws.x : ws.h[l - 1]!, rd, n, a, b, out, wOffs[l]!, bOffs[l]!);
    if (l === 0) break;
    // R ∂W_l += R h_{l−1}ᵀ δ_l (bias term already counted).
    const wOff = wOffs[l]!;
    outerAcc(ws.rh[l - 1]!, d, n, a, b, out, wOff, -1);
    // R δ_{l−1} = (R δ_l W_lᵀ + δ_l V_lᵀ) ⊙ σ'(z_{l−1}) + s_{l−1} ⊙ σ''(z_{l−1}) ⊙ R z_{l−1}.
    const rdp = ws.rd[l - 1]!;
    const mask = tanh ? null : ws.z[l - 1]!;
    denseT(rd, n, a, b, theta, wOff, rdp, false, mask);
    denseT(d, n, a, b, v, wOff, rdp, true, mask);
    const m = n * a;
    if (tanh) {
      const h = ws.h[l - 1]!;
      const s = ws.s[l - 1]!;
      const rz = ws.rz[l - 1]!;
      for (let k = 0; k < m; k++) {
        const hk = h[k]!;
        const dsig = 1 - hk * hk;
        rdp[k] = rdp[k]! * dsig - 2 * hk * dsig * s[k]! * rz[k]!;
      }
    } else {
      const z = ws.z[l - 1]!;
      for (let k = 0; k < m; k++) if (!(z[k]! > 0)) rdp[k] = 0;
    }
  }
}

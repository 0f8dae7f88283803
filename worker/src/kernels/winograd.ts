/**
 * 3×3 stride-1 convolution (NHWC) by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016)
 * for the cpu backend: each 2×2 output tile costs 16 multiply-adds per (input, output) channel
 * pair instead of 36, so the arithmetic, which dominates a Conv4 step on cpu (pure JS reaches
 * ~4.5 GFLOP/s in the register-blocked GEMM), drops 2.25×.
 *
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A   per 4×4 input tile d, 3×3 filter g, 2×2 output tile Y,
 * with the channel sums done as 16 matrix products (one per transform-domain point ξ):
 *   M_ξ[tile, f] = Σ_c U_ξ[tile, c] · V_ξ[c, f],  U = Bᵀ d B,  V = G g Gᵀ.
 *
 * Accuracy: the transforms only add, subtract and halve, and JS computes in float64: everything
 * from the float32 inputs to the float32 output stays in float64 (transformed tiles and filters are
 * Float64Arrays, sums accumulate in float64), so the result is the exact convolution rounded once
 * to float32, as close as the direct GEMM path (which rounds partial sums every 256 terms) or closer.
 *
 * Layout: tiles are processed in chunks of TILES (cache-sized); within a chunk the transformed input
 * is packed as U[ξ][group of 4 tiles][c][4] and the filter as V[ξ][panel of 4 f][c][4], exactly the
 * operand panels of the 4×4 register-blocked product loop of ./gemm.ts, so no packing step is needed.
 */

/** Tiles per chunk (a multiple of 4): U and M of a chunk stay within L2 for 64 channels. */
const TILES = 32;

let xpad = new Float32Array(0);
let uBuf = new Float64Array(0);
let mBuf = new Float64Array(0);

export interface WinogradGeometry {
  readonly batch: number;
  readonly inHeight: number;
  readonly inWidth: number;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly outHeight: number;
  readonly outWidth: number;
  /** Zero rows/columns before the input (the convolution's top/left padding). */
  readonly top: number;
  readonly left: number;
}

/**
 * V = G g Gᵀ for every (c, f), packed as [ξ][f panel][c][4] (f past F zero). `tap(kh, kw, c, f)`
 * is the index of g[kh][kw] for input channel c and output channel f in `w`.
 */
export function winogradFilter(w: Float32Array, C: number, F: number, tap: (kh: number, kw: number, c: number, f: number) => number): Float64Array {
  const P = (F + 3) >> 2;
  const v = new Float64Array(16 * P * C * 4);
  const g = new Float64Array(9);
  for (let c = 0; c < C; c++) {
    for (let f = 0; f < F; f++) {
      for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) g[kh * 3 + kw] = w[tap(kh, kw, c, f)]!;
      // h = G g (4×3), then h Gᵀ (4×4)
      for (let a = 0; a < 4; a++) {
        let h0: number, h1: number, h2: number;
        if (a === 0) {
          h0 = g[0]!; h1 = g[1]!; h2 = g[2]!;
        } else if (a === 3) {
          h0 = g[6]!; h1 = g[7]!; h2 = g[8]!;
        } else {
          const s = a === 1 ? 1 : -1;
          h0 = (g[0]! + s * g[3]! + g[6]!) * 0.5;
          h1 = (g[1]! + s * g[4]! + g[7]!) * 0.5;
          h2 = (g[2]! + s * g[5]! + g[8]!) * 0.5;
        }
        const row = [h0, (h0 + h1 + h2) * 0.5, (h0 - h1 + h2) * 0.5, h2];
        for (let b = 0; b < 4; b++) {
          const xi = a * 4 + b;
          v[((xi * P + (f >> 2)) * C + c) * 4 + (f & 3)] = row[b]!;
        }
      }
    }
  }
  return v;
}

/** V of a forward conv2d filter w[kh, kw, c, f] (HWIO, 3×3). */
export function winogradForwardFilter(w: Float32Array, C: number, F: number): Float64Array {
  return winogradFilter(w, C, F, (kh, kw, c, f) => ((kh * 3 + kw) * C + c) * F + f);
}

/** x zero-padded to the 4×4 windows of every output tile (./winograd-filter.ts reads it too). */
export interface PaddedInput {
  /** Scratch shared by every call: valid until the next padInput. */
  readonly xp: Float32Array;
  /** Tile rows and columns: ⌈OH/2⌉, ⌈OW/2⌉. */
  readonly TH: number;
  readonly TW: number;
  /** Padded rows and columns, 2·TH + 2 and 2·TW + 2: tile (i, j) reads rows 2i..2i+3, columns 2j..2j+3. */
  readonly PH: number;
  readonly PW: number;
}

/** xp[n, r, s, c] = x[n, r − top, s − left, c], 0 outside x (rows/columns of x past the windows are dropped). */
export function padInput(x: Float32Array, geo: WinogradGeometry): PaddedInput {
  const { batch: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, top, left } = geo;
  const TH = (OH + 1) >> 1;
  const TW = (OW + 1) >> 1;
  const PH = 2 * TH + 2;
  const PW = 2 * TW + 2;
  const padSize = N * PH * PW * C;
  if (xpad.length < padSize) xpad = new Float32Array(padSize);
  const xp = xpad;
  xp.fill(0, 0, padSize);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const pr = h + top;
      if (pr < 0 || pr >= PH) continue;
      const w0 = Math.max(0, -left);
      const w1 = Math.min(W, PW - left);
      if (w1 <= w0) continue;
      const src = ((n * H + h) * W + w0) * C;
      xp.set(x.subarray(src, src + (w1 - w0) * C), ((n * PH + pr) * PW + w0 + left) * C);
    }
  }
  return { xp, TH, TW, PH, PW };
}

/**
 * U = Bᵀ d B of the 4×4 window of xp starting at p0 (rows rowStride apart, pixels C apart), for the
 * channels c < count from p0 on: u[o + c·cStride + ξ·xiStride] = U_c[ξ] (ξ = 4a + b, float64, exact).
 */
export function inputTransform(xp: Float32Array, p0: number, rowStride: number, C: number, count: number, u: Float64Array, o: number, cStride: number, xiStride: number): void {
  const p1 = p0 + rowStride;
  const p2 = p1 + rowStride;
  const p3 = p2 + rowStride;
  const uXi = xiStride;
  for (let c = 0; c < count; c++, o += cStride) {
    const d00 = xp[p0 + c]!, d01 = xp[p0 + C + c]!, d02 = xp[p0 + 2 * C + c]!, d03 = xp[p0 + 3 * C + c]!;
    const d10 = xp[p1 + c]!, d11 = xp[p1 + C + c]!, d12 = xp[p1 + 2 * C + c]!, d13 = xp[p1 + 3 * C + c]!;
    const d20 = xp[p2 + c]!, d21 = xp[p2 + C + c]!, d22 = xp[p2 + 2 * C + c]!, d23 = xp[p2 + 3 * C + c]!;
    const d30 = xp[p3 + c]!, d31 = xp[p3 + C + c]!, d32 = xp[p3 + 2 * C + c]!, d33 = xp[p3 + 3 * C + c]!;
    // e = Bᵀ d (rows)
    const e00 = d00 - d20, e01 = d01 - d21, e02 = d02 - d22, e03 = d03 - d23;
    const e10 = d10 + d20, e11 = d11 + d21, e12 = d12 + d22, e13 = d13 + d23;
    const e20 = d20 - d10, e21 = d21 - d11, e22 = d22 - d12, e23 = d23 - d13;
    const e30 = d10 - d30, e31 = d11 - d31, e32 = d12 - d32, e33 = d13 - d33;
    // e B (columns)
    u[o] = e00 - e02; u[o + uXi] = e01 + e02; u[o + 2 * uXi] = e02 - e01; u[o + 3 * uXi] = e01 - e03;
    u[o + 4 * uXi] = e10 - e12; u[o + 5 * uXi] = e11 + e12; u[o + 6 * uXi] = e12 - e11; u[o + 7 * uXi] = e11 - e13;
    u[o + 8 * uXi] = e20 - e22; u[o + 9 * uXi] = e21 + e22; u[o + 10 * uXi] = e22 - e21; u[o + 11 * uXi] = e21 - e23;
    u[o + 12 * uXi] = e30 - e32; u[o + 13 * uXi] = e31 + e32; u[o + 14 * uXi] = e32 - e31; u[o + 15 * uXi] = e31 - e33;
  }
}

/**
 * out[n, i, j, f] (NHWC, overwritten) = Σ_{kh, kw, c} x[n, i + kh − top, j + kw − left, c] · g_{c,f}[kh, kw]
 * (x zero outside), with V from winogradFilter.
 */
export function winogradConv(x: Float32Array, geo: WinogradGeometry, v: Float64Array, out: Float32Array): void {
  const { batch: N, inChannels: C, outChannels: F, outHeight: OH, outWidth: OW } = geo;
  const P = (F + 3) >> 2;
  const FP = P * 4;
  const { xp, TH, TW, PH, PW } = padInput(x, geo);
  const T = N * TH * TW;
  const G = TILES >> 2;
  const uSize = 16 * G * C * 4;
  const mSize = TILES * 16 * FP;
  if (uBuf.length < uSize) uBuf = new Float64Array(uSize);
  if (mBuf.length < mSize) mBuf = new Float64Array(mSize);
  const u = uBuf;
  const m = mBuf;
  const uXi = G * C * 4; // stride between ξ in u
  const rowStride = PW * C;
  for (let t0 = 0; t0 < T; t0 += TILES) {
    const tiles = Math.min(TILES, T - t0);
    const groups = (tiles + 3) >> 2;
    // ---- input transform: u[ξ][g][c][lane] = (Bᵀ d B)[ξ] of tile t0 + 4g + lane, channel c
    for (let t = 0; t < groups * 4; t++) {
      const base = ((t >> 2) * C * 4) + (t & 3);
      if (t >= tiles) {
        for (let xi = 0; xi < 16; xi++) for (let c = 0, o = xi * uXi + base; c < C; c++, o += 4) u[o] = 0;
        continue;
      }
      const gt = t0 + t;
      const n = Math.floor(gt / (TH * TW));
      const rem = gt - n * TH * TW;
      const ti = Math.floor(rem / TW);
      const tj = rem - ti * TW;
      inputTransform(xp, ((n * PH + 2 * ti) * PW + 2 * tj) * C, rowStride, C, C, u, base, 4, uXi);
    }
    // ---- 16 products: m[tile][ξ][f] = Σ_c u[ξ][tile][c] · v[ξ][c][f], 4 tiles × 4 f per register block
    for (let xi = 0; xi < 16; xi++) {
      for (let p = 0; p < P; p++) {
        const qb = (xi * P + p) * C * 4;
        for (let g = 0; g < groups; g++) {
          let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
          let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
          let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
          let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
          let r = xi * uXi + g * C * 4;
          let q = qb;
          for (let c = 0; c < C; c++, q += 4, r += 4) {
            const a0 = u[r]!, a1 = u[r + 1]!, a2 = u[r + 2]!, a3 = u[r + 3]!;
            const b0 = v[q]!, b1 = v[q + 1]!, b2 = v[q + 2]!, b3 = v[q + 3]!;
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
          }
          let o = ((g * 4) * 16 + xi) * FP + p * 4;
          const tileStride = 16 * FP;
          m[o] = c00; m[o + 1] = c01; m[o + 2] = c02; m[o + 3] = c03;
          o += tileStride;
          m[o] = c10; m[o + 1] = c11; m[o + 2] = c12; m[o + 3] = c13;
          o += tileStride;
          m[o] = c20; m[o + 1] = c21; m[o + 2] = c22; m[o + 3] = c23;
          o += tileStride;
          m[o] = c30; m[o + 1] = c31; m[o + 2] = c32; m[o + 3] = c33;
        }
      }
    }
    // ---- output transform: Y = Aᵀ M A per tile and f, written where inside the output
    for (let t = 0; t < tiles; t++) {
      const gt = t0 + t;
      const n = Math.floor(gt / (TH * TW));
      const rem = gt - n * TH * TW;
      const ti = Math.floor(rem / TW);
      const tj = rem - ti * TW;
      const i0 = 2 * ti;
      const j0 = 2 * tj;
      const o00 = ((n * OH + i0) * OW + j0) * F;
      const right = j0 + 1 < OW;
      const below = i0 + 1 < OH;
      const mb = t * 16 * FP;
      for (let f = 0; f < F; f++) {
        const k = mb + f;
        const m0 = m[k]!, m1 = m[k + FP]!, m2 = m[k + 2 * FP]!, m3 = m[k + 3 * FP]!;
        const m4 = m[k + 4 * FP]!, m5 = m[k + 5 * FP]!, m6 = m[k + 6 * FP]!, m7 = m[k + 7 * FP]!;
        const m8 = m[k + 8 * FP]!, m9 = m[k + 9 * FP]!, m10 = m[k + 10 * FP]!, m11 = m[k + 11 * FP]!;
        const m12 = m[k + 12 * FP]!, m13 = m[k + 13 * FP]!, m14 = m[k + 14 * FP]!, m15 = m[k + 15 * FP]!;
        const s0 = m0 + m4 + m8, s1 = m1 + m5 + m9, s2 = m2 + m6 + m10, s3 = m3 + m7 + m11;
        const r0 = m4 - m8 - m12, r1 = m5 - m9 - m13, r2 = m6 - m10 - m14, r3 = m7 - m11 - m15;
        out[o00 + f] = s0 + s1 + s2;
        if (right) out[o00 + F + f] = s1 - s2 - s3;
        if (below) {
          const o10 = o00 + OW * F;
          out[o10 + f] = r0 + r1 + r2;
          if (right) out[o10 + F + f] = r1 - r2 - r3;
        }
      }
    }
  }
}

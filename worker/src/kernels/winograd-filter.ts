/**
 * The filter gradient of a 3×3 stride-1 convolution (NHWC) by Winograd F(3×3, 2×2), the transpose of
 * the forward conv's F(2×2, 3×3) (./winograd.ts), for the cpu backend's Conv2DBackpropFilter.
 *
 * The forward tile Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A is linear in g, so for a loss with gradient DY
 * on each 2×2 output tile:
 *   dW_{c,f} (3×3) = Gᵀ [ Σ_tiles (Bᵀ X_{t,c} B) ⊙ (A DY_{t,f} Aᵀ) ] G
 * where tile t covers dy rows 2i..2i+1, columns 2j..2j+1 (0 past OH/OW) and the 4×4 window of x at
 * (2i − top, 2j − left) (0 outside x), exactly the forward's tiles. The channel sums become 16
 * products, one per transform-domain point ξ:
 *   M_ξ[c, f] = Σ_t U_ξ[t, c] · V_ξ[t, f],  U = Bᵀ X B (./winograd.ts's input transform),  V = A DY Aᵀ,
 * 16·C·F multiply-adds per tile instead of the direct 36·C·F (im2colᵀ · dy). Conv4 block 2 (x [80, 14,
 * 14, 64], 64 filters, 'same'), kernel alone: ~297 → ~150 ms, 2.1× → ~1.0–1.2× the forward conv; the
 * transforms take ~20 ms of it. Conv4 5w1s looped on cpu (interleaved in one process): FOMAML 1.47 →
 * 1.23, MAML 1.68 → 1.47 CPU s/task.
 *
 * Accuracy: as the forward, everything between the float32 inputs and the float32 result is float64
 * (transforms only add, subtract and halve; sums over all tiles accumulate in float64), rounded once.
 *
 * Layout: tiles in chunks of TILES; within a chunk u[ξ][c group][t][4 c] and v[ξ][f group][t][4 f]
 * (groups of 4, the last one zero-padded), the operand panels of a 4 c × 4 f register block, read
 * contiguously along t (~5% faster than u[ξ][t][c], v[ξ][t][f]); the 16 C×F sums m[ξ][c][f] stay in
 * float64 across chunks.
 */
import { inputTransform, padInput, type WinogradGeometry } from './winograd.js';

/** Tiles per chunk: u and v of one ξ (TILES × 64 channels × 8 bytes each) stay in L1/L2. */
const TILES = 64;

let uBuf = new Float64Array(0);
let vBuf = new Float64Array(0);
let mBuf = new Float64Array(0);

/**
 * out[kh, kw, c, f] (HWIO, overwritten) = Σ_{n,i,j} x[n, i + kh − top, j + kw − left, c] · dy[n, i, j, f]
 * (x zero outside), for the 3×3 stride-1 convolution of geometry `geo` (x [N, H, W, C], dy [N, OH, OW, F]).
 */
export function winogradFilterGrad(x: Float32Array, dy: Float32Array, geo: WinogradGeometry, out: Float32Array): void {
  const { batch: N, inChannels: C, outChannels: F, outHeight: OH, outWidth: OW } = geo;
  const CP = (C + 3) & ~3;
  const FP = (F + 3) & ~3;
  const { xp, TH, TW, PH, PW } = padInput(x, geo);
  const T = N * TH * TW;
  const uXi = TILES * CP;
  const vXi = TILES * FP;
  if (uBuf.length < 16 * uXi) uBuf = new Float64Array(16 * uXi);
  if (vBuf.length < 16 * vXi) vBuf = new Float64Array(16 * vXi);
  if (mBuf.length < 16 * CP * FP) mBuf = new Float64Array(16 * CP * FP);
  const u = uBuf;
  const v = vBuf;
  const m = mBuf;
  m.fill(0, 0, 16 * CP * FP);
  // Padding lanes (c ≥ C, f ≥ F, in the last group) are never written by the transforms: zero them once.
  const zeroLanes = (buf: Float64Array, xiStride: number, lastGroup: number, from: number) => {
    if (from === 0) return;
    for (let xi = 0; xi < 16; xi++) {
      for (let t = 0, o = xi * xiStride + lastGroup * TILES * 4; t < TILES; t++, o += 4) buf.fill(0, o + from, o + 4);
    }
  };
  zeroLanes(u, uXi, (CP >> 2) - 1, C & 3);
  zeroLanes(v, vXi, (FP >> 2) - 1, F & 3);
  const rowStride = PW * C;
  const tilesPerImage = TH * TW;
  const dyRow = OW * F;
  for (let t0 = 0; t0 < T; t0 += TILES) {
    const tiles = Math.min(TILES, T - t0);
    for (let t = 0; t < tiles; t++) {
      const gt = t0 + t;
      const n = Math.floor(gt / tilesPerImage);
      const rem = gt - n * tilesPerImage;
      const ti = Math.floor(rem / TW);
      const tj = rem - ti * TW;
      // ---- u[ξ][c >> 2][t][c & 3] = (Bᵀ X B)[ξ]
      const p0 = ((n * PH + 2 * ti) * PW + 2 * tj) * C;
      for (let c0 = 0; c0 < C; c0 += 4) inputTransform(xp, p0 + c0, rowStride, C, Math.min(4, C - c0), u, (c0 * TILES + t * 4), 1, uXi);
      // ---- v[ξ][f >> 2][t][f & 3] = (A DY Aᵀ)[ξ], DY = [[p, q], [r, s]] (0 past OH/OW): the rows of A·DY are
      // [p, q], [p + r, q + s], [p − r, q − s], [−r, −s]; each row [a, b] times Aᵀ is [a, a + b, a − b, −b].
      const i0 = 2 * ti;
      const j0 = 2 * tj;
      const right = j0 + 1 < OW;
      const below = i0 + 1 < OH;
      const d0 = ((n * OH + i0) * OW + j0) * F;
      const d1 = d0 + dyRow;
      for (let f = 0; f < F; f++) {
        const o = (f & ~3) * TILES + t * 4 + (f & 3);
        const p = dy[d0 + f]!;
        const q = right ? dy[d0 + F + f]! : 0;
        const r = below ? dy[d1 + f]! : 0;
        const s = below && right ? dy[d1 + F + f]! : 0;
        const a1 = p + r, b1 = q + s, a2 = p - r, b2 = q - s;
        v[o] = p; v[o + vXi] = p + q; v[o + 2 * vXi] = p - q; v[o + 3 * vXi] = -q;
        v[o + 4 * vXi] = a1; v[o + 5 * vXi] = a1 + b1; v[o + 6 * vXi] = a1 - b1; v[o + 7 * vXi] = -b1;
        v[o + 8 * vXi] = a2; v[o + 9 * vXi] = a2 + b2; v[o + 10 * vXi] = a2 - b2; v[o + 11 * vXi] = -b2;
        v[o + 12 * vXi] = -r; v[o + 13 * vXi] = -r - s; v[o + 14 * vXi] = s - r; v[o + 15 * vXi] = s;
      }
    }
    // ---- 16 products: m[ξ][c][f] += Σ_t U_ξ[t, c] · V_ξ[t, f], 4 c × 4 f per register block
    for (let xi = 0; xi < 16; xi++) {
      const ub = xi * uXi;
      const vb = xi * vXi;
      for (let c0 = 0; c0 < CP; c0 += 4) {
        for (let f0 = 0; f0 < FP; f0 += 4) {
          let o = (xi * CP + c0) * FP + f0;
          let c00 = m[o]!, c01 = m[o + 1]!, c02 = m[o + 2]!, c03 = m[o + 3]!;
          let c10 = m[o + FP]!, c11 = m[o + FP + 1]!, c12 = m[o + FP + 2]!, c13 = m[o + FP + 3]!;
          let c20 = m[o + 2 * FP]!, c21 = m[o + 2 * FP + 1]!, c22 = m[o + 2 * FP + 2]!, c23 = m[o + 2 * FP + 3]!;
          let c30 = m[o + 3 * FP]!, c31 = m[o + 3 * FP + 1]!, c32 = m[o + 3 * FP + 2]!, c33 = m[o + 3 * FP + 3]!;
          let r = ub + c0 * TILES;
          let q = vb + f0 * TILES;
          for (let t = 0; t < tiles; t++, r += 4, q += 4) {
            const a0 = u[r]!, a1 = u[r + 1]!, a2 = u[r + 2]!, a3 = u[r + 3]!;
            const b0 = v[q]!, b1 = v[q + 1]!, b2 = v[q + 2]!, b3 = v[q + 3]!;
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
          }
          m[o] = c00; m[o + 1] = c01; m[o + 2] = c02; m[o + 3] = c03;
          o += FP;
          m[o] = c10; m[o + 1] = c11; m[o + 2] = c12; m[o + 3] = c13;
          o += FP;
          m[o] = c20; m[o + 1] = c21; m[o + 2] = c22; m[o + 3] = c23;
          o += FP;
          m[o] = c30; m[o + 1] = c31; m[o + 2] = c32; m[o + 3] = c33;
        }
      }
    }
  }
  // ---- output transform dW = Gᵀ M G (3×3) per (c, f): Gᵀ's rows are [1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]
  const xiStride = CP * FP;
  const tap = C * F;
  for (let c = 0; c < C; c++) {
    for (let f = 0; f < F; f++) {
      const k = c * FP + f;
      const o = c * F + f;
      const m0 = m[k]!, m1 = m[k + xiStride]!, m2 = m[k + 2 * xiStride]!, m3 = m[k + 3 * xiStride]!;
      const m4 = m[k + 4 * xiStride]!, m5 = m[k + 5 * xiStride]!, m6 = m[k + 6 * xiStride]!, m7 = m[k + 7 * xiStride]!;
      const m8 = m[k + 8 * xiStride]!, m9 = m[k + 9 * xiStride]!, m10 = m[k + 10 * xiStride]!, m11 = m[k + 11 * xiStride]!;
      const m12 = m[k + 12 * xiStride]!, m13 = m[k + 13 * xiStride]!, m14 = m[k + 14 * xiStride]!, m15 = m[k + 15 * xiStride]!;
      // rows: Gᵀ M (3×4)
      const h0 = m0 + (m4 + m8) * 0.5, h1 = m1 + (m5 + m9) * 0.5, h2 = m2 + (m6 + m10) * 0.5, h3 = m3 + (m7 + m11) * 0.5;
      const k0 = (m4 - m8) * 0.5, k1 = (m5 - m9) * 0.5, k2 = (m6 - m10) * 0.5, k3 = (m7 - m11) * 0.5;
      const l0 = (m4 + m8) * 0.5 + m12, l1 = (m5 + m9) * 0.5 + m13, l2 = (m6 + m10) * 0.5 + m14, l3 = (m7 + m11) * 0.5 + m15;
      // columns: (·) G
      out[o] = h0 + (h1 + h2) * 0.5; out[o + tap] = (h1 - h2) * 0.5; out[o + 2 * tap] = (h1 + h2) * 0.5 + h3;
      out[o + 3 * tap] = k0 + (k1 + k2) * 0.5; out[o + 4 * tap] = (k1 - k2) * 0.5; out[o + 5 * tap] = (k1 + k2) * 0.5 + k3;
      out[o + 6 * tap] = l0 + (l1 + l2) * 0.5; out[o + 7 * tap] = (l1 - l2) * 0.5; out[o + 8 * tap] = (l1 + l2) * 0.5 + l3;
    }
  }
}

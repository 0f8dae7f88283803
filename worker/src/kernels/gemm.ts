/**
 * A general matrix multiply on Float32Arrays for the pure-JS (cpu) training kernels:
 *   C[M×N] (row-major, overwritten) = A · B,  A[i,k] = a[aOff + i·sAm + k·sAk],  B[k,j] = b[k·sBk + j·sBn]
 * so that either operand can be read transposed without copying it first.
 *
 * Written for V8: flat typed-array indexing, no allocation in the inner loops, a 4×4 register
 * block (16 float64 accumulators in locals: 8 loads per 16 multiply-adds instead of 3 memory
 * operations per multiply-add in the axpy loop of tfjs-backend-cpu's conv2d), operands packed into
 * contiguous k-major panels per block of KC values of k. Accumulation is in float64 within a k
 * block and rounded to float32 once per block, so results are at least as accurate as float32
 * summation.
 */

const KC = 256;

/** Scratch panels reused across calls (grown on demand). */
const packA = new Float64Array(4 * KC);
let packB = new Float64Array(0);

export interface MatrixView {
  readonly data: Float32Array;
  /** Offset of element [0, 0]. */
  readonly offset?: number;
  /** Stride between rows (first index). */
  readonly rowStride: number;
  /** Stride between columns (second index). */
  readonly colStride: number;
}

/** C = A·B with A: M×K and B: K×N given as strided views; c is M×N row-major and is overwritten. */
export function gemm(M: number, N: number, K: number, A: MatrixView, B: MatrixView, c: Float32Array): void {
  const a = A.data;
  const aOff = A.offset ?? 0;
  const sAm = A.rowStride;
  const sAk = A.colStride;
  const b = B.data;
  const bOff = B.offset ?? 0;
  const sBk = B.rowStride;
  const sBn = B.colStride;
  const nPanels = (N + 3) >> 2;
  const needB = nPanels * 4 * KC;
  if (packB.length < needB) packB = new Float64Array(needB);
  const pa = packA;
  const pb = packB;
  c.fill(0, 0, M * N);
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    // Pack B[k0:k0+kc, :] as panels of 4 columns, k-major: pb[(p·kc + k)·4 + jj].
    for (let p = 0; p < nPanels; p++) {
      const base = p * kc * 4;
      for (let jj = 0; jj < 4; jj++) {
        const j = p * 4 + jj;
        if (j < N) {
          let src = bOff + k0 * sBk + j * sBn;
          for (let k = 0; k < kc; k++, src += sBk) pb[base + k * 4 + jj] = b[src]!;
        } else {
          for (let k = 0; k < kc; k++) pb[base + k * 4 + jj] = 0;
        }
      }
    }
    for (let i0 = 0; i0 < M; i0 += 4) {
      // Pack A[i0:i0+4, k0:k0+kc], k-major: pa[k·4 + ii].
      for (let ii = 0; ii < 4; ii++) {
        const i = i0 + ii;
        if (i < M) {
          let src = aOff + i * sAm + k0 * sAk;
          for (let k = 0; k < kc; k++, src += sAk) pa[k * 4 + ii] = a[src]!;
        } else {
          for (let k = 0; k < kc; k++) pa[k * 4 + ii] = 0;
        }
      }
      const rows = Math.min(4, M - i0);
      for (let p = 0; p < nPanels; p++) {
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        let q = p * kc * 4;
        let r = 0;
        for (let k = 0; k < kc; k++, q += 4, r += 4) {
          const a0 = pa[r]!, a1 = pa[r + 1]!, a2 = pa[r + 2]!, a3 = pa[r + 3]!;
          const b0 = pb[q]!, b1 = pb[q + 1]!, b2 = pb[q + 2]!, b3 = pb[q + 3]!;
          c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
          c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
          c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
          c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        }
        const j0 = p * 4;
        const cols = Math.min(4, N - j0);
        if (cols === 4) {
          let o = i0 * N + j0;
          c[o] = c[o]! + c00; c[o + 1] = c[o + 1]! + c01; c[o + 2] = c[o + 2]! + c02; c[o + 3] = c[o + 3]! + c03;
          if (rows > 1) { o += N; c[o] = c[o]! + c10; c[o + 1] = c[o + 1]! + c11; c[o + 2] = c[o + 2]! + c12; c[o + 3] = c[o + 3]! + c13; }
          if (rows > 2) { o += N; c[o] = c[o]! + c20; c[o + 1] = c[o + 1]! + c21; c[o + 2] = c[o + 2]! + c22; c[o + 3] = c[o + 3]! + c23; }
          if (rows > 3) { o += N; c[o] = c[o]! + c30; c[o + 1] = c[o + 1]! + c31; c[o + 2] = c[o + 2]! + c32; c[o + 3] = c[o + 3]! + c33; }
        } else {
          const blk = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
          for (let ii = 0; ii < rows; ii++) {
            for (let jj = 0; jj < cols; jj++) {
              const o = (i0 + ii) * N + j0 + jj;
              c[o] = c[o]! + blk[ii * 4 + jj]!;
            }
          }
        }
      }
    }
  }
}

/** Row-major M×K matrix view (optionally transposed: the view of its K×M transpose). */
export function rowMajor(data: Float32Array, _rows: number, cols: number, transposed = false, offset = 0): MatrixView {
  return transposed ? { data, offset, rowStride: 1, colStride: cols } : { data, offset, rowStride: cols, colStride: 1 };
}

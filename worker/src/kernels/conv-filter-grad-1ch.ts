/**
 * The cpu backend's filter gradient of a first layer — one input channel, stride 1, no dilation,
 * three filter columns, filters a multiple of 4 (Conv4 on grey images):
 *   dW[kh, kw, 0, f] = Σ_{n,i,j} x[n, i + kh − top, j + kw − left] · dy[n, i, j, f]
 * directly, without im2col or the GEMM: per output row and block of 4 filters, 3 taps × 4 filters
 * = 12 running sums in locals (float64) over the row's pixels, x read from a zero-padded copy through
 * a sliding 3-pixel window (one new x and 4 dy loads per 12 multiply-adds); rounded once at the end.
 * With K = kh·kw = 9 taps the GEMM's 4×4 blocks waste a quarter of their rows and it packs dy
 * (64 values per pixel) for 9 outputs: Conv4 block 1 (x [80, 28, 28, 1], 64 filters), kernel alone: ~35 → ~19 ms (forward conv ~24 ms).
 */
import type { ConvInfo } from './conv-util.js';

let xpad = new Float64Array(0);
let acc = new Float64Array(0);

export function fitsFirstLayerFilterGrad(c: ConvInfo): boolean {
  return (
    c.inChannels === 1 && c.strideHeight === 1 && c.strideWidth === 1 && c.dilationHeight === 1 && c.dilationWidth === 1 &&
    c.filterWidth === 3 && c.outChannels % 4 === 0
  );
}

/** out[kh, kw, 0, f] (overwritten) for x [N, H, W, 1] and dy [N, OH, OW, F]. */
export function firstLayerFilterGrad(x: Float32Array, dy: Float32Array, c: ConvInfo, out: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, filterHeight: FH, outChannels: F } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  // xp[n, r, s] = x[n, r − top, s − left] (0 outside), r < OH + FH − 1, s < OW + 2.
  const PH = OH + FH - 1;
  const PW = OW + 2;
  const size = N * PH * PW;
  if (xpad.length < size) xpad = new Float64Array(size);
  const xp = xpad;
  xp.fill(0, 0, size);
  for (let n = 0; n < N; n++) {
    for (let r = 0; r < PH; r++) {
      const h = r - top;
      if (h < 0 || h >= H) continue;
      const s0 = Math.max(0, left);
      const s1 = Math.min(PW, W + left);
      const src = (n * H + h) * W - left;
      const dst = (n * PH + r) * PW;
      for (let s = s0; s < s1; s++) xp[dst + s] = x[src + s]!;
    }
  }
  const K = FH * 3;
  if (acc.length < K * F) acc = new Float64Array(K * F);
  const a = acc;
  a.fill(0, 0, K * F);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < OH; i++) {
      const d0 = (n * OH + i) * OW * F;
      for (let kh = 0; kh < FH; kh++) {
        const xr = (n * PH + i + kh) * PW;
        const ar = kh * 3 * F;
        for (let f0 = 0; f0 < F; f0 += 4) {
          let s00 = 0, s01 = 0, s02 = 0, s03 = 0;
          let s10 = 0, s11 = 0, s12 = 0, s13 = 0;
          let s20 = 0, s21 = 0, s22 = 0, s23 = 0;
          let x0 = xp[xr]!;
          let x1 = xp[xr + 1]!;
          let d = d0 + f0;
          for (let j = 0; j < OW; j++, d += F) {
            const x2 = xp[xr + j + 2]!;
            const y0 = dy[d]!, y1 = dy[d + 1]!, y2 = dy[d + 2]!, y3 = dy[d + 3]!;
            s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
            s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
            s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
            x0 = x1;
            x1 = x2;
          }
          const o0 = ar + f0;
          const o1 = o0 + F;
          const o2 = o1 + F;
          a[o0] = a[o0]! + s00; a[o0 + 1] = a[o0 + 1]! + s01; a[o0 + 2] = a[o0 + 2]! + s02; a[o0 + 3] = a[o0 + 3]! + s03;
          a[o1] = a[o1]! + s10; a[o1 + 1] = a[o1 + 1]! + s11; a[o1 + 2] = a[o1 + 2]! + s12; a[o1 + 3] = a[o1 + 3]! + s13;
          a[o2] = a[o2]! + s20; a[o2 + 1] = a[o2 + 1]! + s21; a[o2 + 2] = a[o2 + 2]! + s22; a[o2 + 3] = a[o2 + 3]! + s23;
        }
      }
    }
  }
  for (let k = 0; k < K * F; k++) out[k] = a[k]!;
}

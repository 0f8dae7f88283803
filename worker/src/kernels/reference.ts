/**
 * Float64 plain-JS reference implementations of the training kernels (NHWC), for tests and
 * benchmarks: straightforward loops over the definitions, no tfjs.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ConvInfo } from './conv-util.js';

/** y[n,i,j,co] = Σ x[n, i·sH + kh·dH − top, j·sW + kw·dW − left, ci] · w[kh,kw,ci,co]; returns y, dW or dx by `mode`. */
function convLoop(c: ConvInfo, visit: (xi: number, wi: number, yi: number) => void): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = c;
  for (let n = 0; n < N; n++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++)
        for (let kh = 0; kh < c.filterHeight; kh++) {
          const h = i * c.strideHeight + kh * c.dilationHeight - c.padInfo.top;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < c.filterWidth; kw++) {
            const w = j * c.strideWidth + kw * c.dilationWidth - c.padInfo.left;
            if (w < 0 || w >= W) continue;
            for (let ci = 0; ci < CI; ci++)
              for (let co = 0; co < CO; co++)
                visit(((n * H + h) * W + w) * CI + ci, ((kh * c.filterWidth + kw) * CI + ci) * CO + co, ((n * OH + i) * OW + j) * CO + co);
          }
        }
}

export function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, c: ConvInfo): Float64Array {
  const y = new Float64Array(c.batchSize * c.outHeight * c.outWidth * c.outChannels);
  convLoop(c, (xi, wi, yi) => (y[yi]! += x[xi]! * w[wi]!));
  return y;
}

export function conv2dBackpropFilterRef(x: ArrayLike<number>, dy: ArrayLike<number>, c: ConvInfo): Float64Array {
  const dw = new Float64Array(c.filterHeight * c.filterWidth * c.inChannels * c.outChannels);
  convLoop(c, (xi, wi, yi) => (dw[wi]! += x[xi]! * dy[yi]!));
  return dw;
}

export function conv2dBackpropInputRef(dy: ArrayLike<number>, w: ArrayLike<number>, c: ConvInfo): Float64Array {
  const dx = new Float64Array(c.batchSize * c.inHeight * c.inWidth * c.inChannels);
  convLoop(c, (xi, wi, yi) => (dx[xi]! += dy[yi]! * w[wi]!));
  return dx;
}

type PoolInfo = tf.backend_util.Conv2DInfo;

function poolLoop(p: PoolInfo, visit: (n: number, i: number, j: number, c: number, xi: number[]) => void): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  for (let n = 0; n < N; n++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++)
        for (let c = 0; c < C; c++) {
          const taps: number[] = [];
          for (let kh = 0; kh < p.filterHeight; kh++)
            for (let kw = 0; kw < p.filterWidth; kw++) {
              const h = i * p.strideHeight + kh - p.padInfo.top;
              const w = j * p.strideWidth + kw - p.padInfo.left;
              if (h >= 0 && h < H && w >= 0 && w < W) taps.push(((n * H + h) * W + w) * C + c);
            }
          visit(n, i, j, c, taps);
        }
}

/** dx: dy routed to the first maximum of each window (row-major). */
export function maxPoolGradRef(x: ArrayLike<number>, dy: ArrayLike<number>, p: PoolInfo): Float64Array {
  const dx = new Float64Array(x.length);
  poolLoop(p, (n, i, j, c, taps) => {
    let best = -Infinity;
    let at = -1;
    for (const t of taps) {
      if (x[t]! > best) {
        best = x[t]!;
        at = t;
      }
    }
    if (at >= 0) dx[at]! += dy[((n * p.outHeight + i) * p.outWidth + j) * p.inChannels + c]!;
  });
  return dx;
}

/** dx: dy / (fH·fW) spread over each window's in-bounds pixels. */
export function avgPoolGradRef(xSize: number, dy: ArrayLike<number>, p: PoolInfo, divisor: 'full-window' | 'in-bounds' = 'full-window'): Float64Array {
  const dx = new Float64Array(xSize);
  poolLoop(p, (n, i, j, c, taps) => {
    // full-window: tfjs cpu/wasm/webgl AvgPoolGrad (and ours); in-bounds: TensorFlow's (tfjs-node)
    const count = divisor === 'full-window' ? p.filterHeight * p.filterWidth : taps.length;
    const g = dy[((n * p.outHeight + i) * p.outWidth + j) * p.inChannels + c]! / count;
    for (const t of taps) dx[t]! += g;
  });
  return dx;
}

/** max |a − ref| / max |ref|: the error relative to the result's scale. */
export function relativeError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) return Infinity;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return scale === 0 ? err : err / scale;
}

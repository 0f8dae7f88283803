/**
 * Convolution geometry and the im2col / col2im transforms (NHWC, float32) shared by the
 * convolution training kernels. Row m = (n·outH + i)·outW + j of the column matrix holds the
 * receptive field of output pixel (n, i, j) as K = fH·fW·inC values in (kh, kw, c) order, the
 * order of the filter [fH, fW, inC, outC] flattened to [K, outC]; padding reads as 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';

export type ConvInfo = tf.backend_util.Conv2DInfo;

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

export interface ConvAttrs {
  readonly strides: number | [number, number];
  readonly pad: Pad;
  readonly dataFormat?: 'NHWC' | 'NCHW';
  readonly dilations?: number | [number, number];
  readonly dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Geometry of conv2d(x: xShape, filter: filterShape) as tfjs computes it; NHWC only. */
export function convInfo(kernel: string, xShape: readonly number[], filterShape: readonly number[], attrs: ConvAttrs): ConvInfo {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') {
    throw new KernelSetupError(`${kernel}: the training kernels support dataFormat NHWC only, got ${attrs.dataFormat}`);
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** Rows (M) and columns (K) of the column matrix of a convolution. */
export function colsShape(c: ConvInfo): { M: number; K: number } {
  return { M: c.batchSize * c.outHeight * c.outWidth, K: c.filterHeight * c.filterWidth * c.inChannels };
}

let scratch = new Float32Array(0);

/** A scratch Float32Array of at least n values, reused between calls (contents undefined). */
export function scratchBuffer(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.max(n, Math.ceil(scratch.length * 1.25)));
  return scratch;
}

/** cols[M, K] ← the receptive fields of x (NHWC). */
export function im2col(x: Float32Array, c: ConvInfo, cols: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = c;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const K = FH * FW * C;
  let m = 0;
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++, m++) {
        let dst = m * K;
        for (let kh = 0; kh < FH; kh++) {
          const ih = i * SH + kh * DH - top;
          const rowOk = ih >= 0 && ih < H;
          for (let kw = 0; kw < FW; kw++) {
            const iw = j * SW + kw * DW - left;
            if (rowOk && iw >= 0 && iw < W) {
              let src = xN + (ih * W + iw) * C;
              for (let ch = 0; ch < C; ch++) cols[dst++] = x[src++]!;
            } else {
              for (let ch = 0; ch < C; ch++) cols[dst++] = 0;
            }
          }
        }
      }
    }
  }
}

/** dx (NHWC, overwritten) ← Σ of cols[M, K] scattered back onto the pixels they were read from. */
export function col2im(cols: Float32Array, c: ConvInfo, dx: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = c;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const K = FH * FW * C;
  if (C === 1 && SH === 1 && SW === 1 && DH === 1 && DW === 1) {
    col2imGather1(cols, c, dx);
    return;
  }
  dx.fill(0, 0, N * H * W * C);
  let m = 0;
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++, m++) {
        let src = m * K;
        for (let kh = 0; kh < FH; kh++) {
          const ih = i * SH + kh * DH - top;
          const rowOk = ih >= 0 && ih < H;
          for (let kw = 0; kw < FW; kw++) {
            const iw = j * SW + kw * DW - left;
            if (rowOk && iw >= 0 && iw < W) {
              let dst = xN + (ih * W + iw) * C;
              for (let ch = 0; ch < C; ch++, dst++) dx[dst] = dx[dst]! + cols[src++]!;
            } else {
              src += C;
            }
          }
        }
      }
    }
  }
}

/**
 * col2im for one channel, stride 1, no dilation (a first layer's input gradient), as a gather:
 * each dx pixel sums the taps that reach it, dx[n, h, w] = Σ cols[(n, h + top − kh, w + left − kw), (kh, kw)],
 * written once (no zero fill, no read-modify-write per tap).
 */
function col2imGather1(cols: Float32Array, c: ConvInfo, dx: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, filterHeight: FH, filterWidth: FW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const K = FH * FW;
  let d = 0;
  for (let n = 0; n < N; n++) {
    const base = n * OH * OW;
    for (let h = 0; h < H; h++) {
      const khLo = Math.max(0, h + top - OH + 1);
      const khHi = Math.min(FH - 1, h + top);
      for (let w = 0; w < W; w++, d++) {
        const kwLo = Math.max(0, w + left - OW + 1);
        const kwHi = Math.min(FW - 1, w + left);
        let acc = 0;
        for (let kh = khLo; kh <= khHi; kh++) {
          const row = (base + (h + top - kh) * OW) * K + kh * FW;
          for (let kw = kwLo; kw <= kwHi; kw++) acc += cols[row + (w + left - kw) * K + kw]!;
        }
        dx[d] = acc;
      }
    }
  }
}

/**
 * Conv2D (forward) for the cpu backend: im2col + the register-blocked GEMM of ./gemm.ts.
 * tfjs-backend-cpu's own Conv2D is an axpy loop (~0.7 GFLOP/s here); the training kernels of this
 * folder run on the same GEMM, so forward and backward passes cost about the same per FLOP.
 * 3×3 stride-1 convolutions with at least 2 input channels (Conv4's blocks 2–4) go through
 * Winograd F(2×2, 3×3) (./winograd.ts: 2.25× fewer multiply-adds, all in float64, rounded once): block 2 of
 * the 75 query images 287 → 117 ms, block 3 70 → 40 ms. With one input channel (block 1 on
 * grey images) im2col + GEMM is faster (22.6 vs 26.0 ms); from 2 channels on Winograd wins.
 * (wasm keeps its own Conv2D: XNNPACK, far faster than any JS loop.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { colsShape, convInfo, im2col, scratchBuffer, type ConvAttrs } from './conv-util.js';
import { gemm, rowMajor } from './gemm.js';
import { ioFor, type TensorInfo } from './io.js';
import { winogradConv, winogradForwardFilter } from './winograd.js';

/** Fewest input channels for which Winograd beats im2col + GEMM (x [75, 28, 28, C], 64 filters: C = 1 15% slower, C = 2 15% faster). */
export const WINOGRAD_MIN_CHANNELS = 2;

/** Whether conv `c` goes through Winograd F(2×2, 3×3): 3×3 filter, stride 1, no dilation, ≥ WINOGRAD_MIN_CHANNELS inputs. */
export function usesWinograd(c: { filterHeight: number; filterWidth: number; strideHeight: number; strideWidth: number; dilationHeight: number; dilationWidth: number; inChannels: number }): boolean {
  return (
    c.filterHeight === 3 && c.filterWidth === 3 && c.strideHeight === 1 && c.strideWidth === 1 &&
    c.dilationHeight === 1 && c.dilationWidth === 1 && c.inChannels >= WINOGRAD_MIN_CHANNELS
  );
}

export function conv2dCpu(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const x = args.inputs.x!;
  const filter = args.inputs.filter!;
  const c = convInfo(tf.Conv2D, x.shape, filter.shape, args.attrs as unknown as ConvAttrs);
  const { M, K } = colsShape(c);
  const out = io.alloc(c.outShape);
  const w = io.view(filter);
  const y = io.view(out);
  if (usesWinograd(c)) {
    const geo = {
      batch: c.batchSize, inHeight: c.inHeight, inWidth: c.inWidth, inChannels: c.inChannels, outChannels: c.outChannels,
      outHeight: c.outHeight, outWidth: c.outWidth, top: c.padInfo.top, left: c.padInfo.left,
    };
    winogradConv(io.view(x), geo, winogradForwardFilter(w, c.inChannels, c.outChannels), y);
    return out;
  }
  if (c.filterHeight === 1 && c.filterWidth === 1 && c.strideHeight === 1 && c.strideWidth === 1 && c.padInfo.top === 0 && c.padInfo.left === 0 && c.outHeight === c.inHeight && c.outWidth === c.inWidth) {
    gemm(M, c.outChannels, K, rowMajor(io.view(x), M, K), rowMajor(w, K, c.outChannels), y);
    return out;
  }
  const cols = scratchBuffer(M * K);
  im2col(io.view(x), c, cols);
  gemm(M, c.outChannels, K, rowMajor(cols, M, K), rowMajor(w, K, c.outChannels), y);
  return out;
}

export const conv2dCpuConfig: tf.KernelConfig = {
  kernelName: tf.Conv2D,
  backendName: 'cpu',
  kernelFunc: conv2dCpu,
};

/**
 * Conv2D (forward) for the cpu backend: im2col + the register-blocked GEMM of ./gemm.ts.
 * tfjs-backend-cpu's own Conv2D is an axpy loop (~0.7 GFLOP/s here); the training kernels of this
 * folder run on the same GEMM, so forward and backward passes cost about the same per FLOP.
 * (wasm keeps its own Conv2D: XNNPACK, far faster than any JS loop.)
 */
import * as tf from '@tensorflow/tfjs-core';
import { colsShape, convInfo, im2col, scratchBuffer, type ConvAttrs } from './conv-util.js';
import { gemm, rowMajor } from './gemm.js';
import { ioFor, type TensorInfo } from './io.js';

export function conv2dCpu(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const x = args.inputs.x!;
  const filter = args.inputs.filter!;
  const c = convInfo(tf.Conv2D, x.shape, filter.shape, args.attrs as unknown as ConvAttrs);
  const { M, K } = colsShape(c);
  const out = io.alloc(c.outShape);
  const w = io.view(filter);
  const y = io.view(out);
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
  kernelFunc: conv2dCpu as unknown as tf.KernelFunc,
};

/**
 * Conv2DBackpropInput: dx[n, h, w, ci] = Σ dy[n, i, j, co] · W[kh, kw, ci, co] over h = i·s + kh − top,
 * w = j·s + kw − left.
 *
 * cpu: dcols = dy · Wᵀ with the GEMM of ./gemm.ts, then col2im.
 * wasm (whose own kernel is a scalar C++ loop, ~12× slower than its forward conv): with stride 1
 *   it is a forward convolution of dy with W flipped in space and with ci/co swapped, padded by
 *   fH − 1 − top (XNNPACK); with stride > 1, dcols = dy · Wᵀ on the backend's BatchMatMul, then
 *   col2im in JS on the heap.
 */
import * as tf from '@tensorflow/tfjs-core';
import { col2im, colsShape, convInfo, scratchBuffer, type ConvAttrs, type ConvInfo } from './conv-util.js';
import { gemm, rowMajor } from './gemm.js';
import { ioFor, type KernelIo, type TensorInfo } from './io.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function geometry(args: Args): { dy: TensorInfo; filter: TensorInfo; c: ConvInfo } {
  const dy = args.inputs.dy!;
  const filter = args.inputs.filter!;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const c = convInfo(tf.Conv2DBackpropInput, attrs.inputShape, filter.shape, attrs);
  if (dy.shape.join() !== c.outShape.join()) {
    throw new Error(`Conv2DBackpropInput: dy has shape [${dy.shape}], the convolution's output is [${c.outShape}]`);
  }
  return { dy, filter, c };
}

export function conv2dBackpropInputCpu(args: Args): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const { dy, filter, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
  const out = io.alloc(c.inShape);
  const dcols = scratchBuffer(M * K);
  // dcols[M, K] = dy[M, CO] · Wᵀ[CO, K]
  gemm(M, K, CO, rowMajor(io.view(dy), M, CO), rowMajor(io.view(filter), K, CO, true), dcols);
  col2im(dcols, c, io.view(out));
  return out;
}

/** W[kh, kw, ci, co] → W'[fH−1−kh, fW−1−kw, co, ci] (a new tensor). */
function flipFilter(io: KernelIo, filter: TensorInfo, c: ConvInfo): TensorInfo {
  const { filterHeight: FH, filterWidth: FW, inChannels: CI, outChannels: CO } = c;
  const out = io.alloc([FH, FW, CO, CI]);
  const w = io.view(filter);
  const f = io.view(out);
  for (let kh = 0; kh < FH; kh++) {
    for (let kw = 0; kw < FW; kw++) {
      const src = (kh * FW + kw) * CI * CO;
      const dst = ((FH - 1 - kh) * FW + (FW - 1 - kw)) * CO * CI;
      for (let ci = 0; ci < CI; ci++) {
        for (let co = 0; co < CO; co++) f[dst + co * CI + ci] = w[src + ci * CO + co]!;
      }
    }
  }
  return out;
}

/** W as [K, CO] → Wᵀ [1, CO, K] (a new tensor). */
function transposeFilter(io: KernelIo, filter: TensorInfo, K: number, CO: number): TensorInfo {
  const out = io.alloc([1, CO, K]);
  const w = io.view(filter);
  const t = io.view(out);
  for (let k = 0; k < K; k++) for (let co = 0; co < CO; co++) t[co * K + k] = w[k * CO + co]!;
  return out;
}

export function conv2dBackpropInputWasm(args: Args): TensorInfo {
  const io = ioFor('wasm', args.backend);
  const { dy, filter, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
  const temps: TensorInfo[] = [];
  try {
    const pt = c.filterHeight - 1 - c.padInfo.top;
    const pl = c.filterWidth - 1 - c.padInfo.left;
    const pb = c.inHeight - c.outHeight + c.filterHeight - 1 - pt;
    const pr = c.inWidth - c.outWidth + c.filterWidth - 1 - pl;
    if (c.strideHeight === 1 && c.strideWidth === 1 && c.dilationHeight === 1 && c.dilationWidth === 1 && Math.min(pt, pl, pb, pr) >= 0) {
      const flipped = flipFilter(io, filter, c);
      temps.push(flipped);
      const pad = [[0, 0], [pt, pb], [pl, pr], [0, 0]];
      return io.run('Conv2D', { x: dy, filter: flipped }, { strides: [1, 1], pad, dilations: [1, 1], dataFormat: 'NHWC' });
    }
    const wT = transposeFilter(io, filter, K, CO);
    temps.push(wT);
    const dcols = io.run('BatchMatMul', { a: { ...dy, shape: [1, M, CO] }, b: wT }, { transposeA: false, transposeB: false });
    temps.push(dcols);
    const out = io.alloc(c.inShape);
    col2im(io.view(dcols), c, io.view(out));
    return out;
  } finally {
    for (const t of temps) io.dispose(t);
  }
}

export const conv2dBackpropInputCpuConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'cpu',
  kernelFunc: conv2dBackpropInputCpu as unknown as tf.KernelFunc,
};

export const conv2dBackpropInputWasmConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInputWasm as unknown as tf.KernelFunc,
};

/**
 * Conv2DBackpropFilter: dW[kh, kw, ci, co] = Σ_{n,i,j} x[n, i·s + kh − top, j·s + kw − left, ci] · dy[n, i, j, co].
 *
 * cpu: im2col(x)ᵀ · dy with the GEMM of ./gemm.ts (tfjs-backend-cpu's own is a 7-deep loop calling
 *   TensorBuffer.get per multiply-add, ~55× slower than its forward conv of the same FLOPs).
 * wasm (which has no such kernel, tfjs issue #8474): the backend's own XNNPACK Conv2D computes it as
 *   a convolution over transposed operands: batch ← ci, channels ← n, filter ← dy as [i, j, n, co],
 *   dilation ← the stride, stride 1, explicit padding (cropping x where the last window ends early):
 *   out[ci, kh, kw, co] = Σ_{i,j,n} xᵀ[ci, kh + i·s, kw + j·s, n] · dyᵀ[i, j, n, co], then transposed back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { colsShape, convInfo, im2col, scratchBuffer, type ConvAttrs, type ConvInfo } from './conv-util.js';
import { gemm, rowMajor } from './gemm.js';
import { ioFor, type KernelIo, type TensorInfo } from './io.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function geometry(args: Args): { x: TensorInfo; dy: TensorInfo; c: ConvInfo } {
  const x = args.inputs.x!;
  const dy = args.inputs.dy!;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const c = convInfo(tf.Conv2DBackpropFilter, x.shape, attrs.filterShape, attrs);
  if (dy.shape.join() !== c.outShape.join()) {
    throw new Error(`Conv2DBackpropFilter: dy has shape [${dy.shape}], the convolution's output is [${c.outShape}]`);
  }
  return { x, dy, c };
}

export function conv2dBackpropFilterCpu(args: Args): TensorInfo {
  const io = ioFor('cpu', args.backend);
  const { x, dy, c } = geometry(args);
  const { M, K } = colsShape(c);
  const CO = c.outChannels;
  const out = io.alloc([c.filterHeight, c.filterWidth, c.inChannels, CO]);
  const cols = scratchBuffer(M * K);
  im2col(io.view(x), c, cols);
  // dW[K, CO] = colsᵀ[K, M] · dy[M, CO]
  gemm(K, CO, M, rowMajor(cols, M, K, true), rowMajor(io.view(dy), M, CO), io.view(out));
  return out;
}

/** The wasm path, through the backend's own Transpose, Slice and Conv2D kernels. */
export function conv2dBackpropFilterViaConv(io: KernelIo, x: TensorInfo, dy: TensorInfo, c: ConvInfo): TensorInfo {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, strideHeight: SH, strideWidth: SW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  // Rows/columns of (padded) x the windows reach: the last one starts at (OH − 1)·SH.
  const bottom = (OH - 1) * SH + c.filterHeight - top - H;
  const right = (OW - 1) * SW + c.filterWidth - left - W;
  const temps: TensorInfo[] = [];
  try {
    let xs = x;
    if (bottom < 0 || right < 0) {
      xs = io.run('Slice', { x }, { begin: [0, 0, 0, 0], size: [c.batchSize, H + Math.min(0, bottom), W + Math.min(0, right), c.inChannels] });
      temps.push(xs);
    }
    const xT = io.run('Transpose', { x: xs }, { perm: [3, 1, 2, 0] });
    temps.push(xT);
    const dyT = io.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    temps.push(dyT);
    const pad = [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]];
    const conv = io.run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad, dilations: [SH, SW], dataFormat: 'NHWC' });
    temps.push(conv);
    return io.run('Transpose', { x: conv }, { perm: [1, 2, 0, 3] });
  } finally {
    for (const t of temps) io.dispose(t);
  }
}

export function conv2dBackpropFilterWasm(args: Args): TensorInfo {
  const io = ioFor('wasm', args.backend);
  const { x, dy, c } = geometry(args);
  return conv2dBackpropFilterViaConv(io, x, dy, c);
}

export const conv2dBackpropFilterCpuConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'cpu',
  kernelFunc: conv2dBackpropFilterCpu as unknown as tf.KernelFunc,
};

export const conv2dBackpropFilterWasmConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterWasm as unknown as tf.KernelFunc,
};

/**
 * StridedSlice (float32) for the cpu backend. The second-order MaxPoolGrad gradient
 * (../gradients/max-pool-grad.ts) reads every window tap as a strided view of the pooled input;
 * tfjs-backend-cpu copies a truly strided slice element by element through TensorBuffer
 * indexToLoc/get/set with spread arguments (~1.4 µs per element: 0.7 s of a second-order Conv4
 * 5w1s MAML task on cpu for 8 taps of the 5 support images' block-1 activation, per-kernel
 * profile). Here: an odometer over the outer axes and one strided loop over the innermost.
 * Identity and contiguous slices, and other dtypes, go to the backend's own kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** out[loc] = x[loc·strides + begin] over `shape` (x of `xShape`, same rank), row-major. */
export function stridedCopy(x: Float32Array, xShape: readonly number[], begin: readonly number[], strides: readonly number[], shape: readonly number[], out: Float32Array): void {
  const r = xShape.length;
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  if (r === 0) {
    out[0] = x[0]!;
    return;
  }
  const xStride = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; i--) {
    xStride[i] = s;
    s *= xShape[i]!;
  }
  const step = xStride.map((s, i) => s * strides[i]!); // x offset per output step along axis i
  let src = 0;
  for (let i = 0; i < r; i++) src += begin[i]! * xStride[i]!;
  const n = shape[r - 1]!;
  const inner = step[r - 1]!;
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < total; o += n) {
    for (let k = 0, s = src; k < n; k++, s += inner) out[o + k] = x[s]!;
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      src += step[d]!;
      if (idx[d]! < shape[d]!) break;
      src -= step[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export const stridedSliceCpuConfig: tf.KernelConfig = {
  kernelName: tf.StridedSlice,
  backendName: 'cpu',
  kernelFunc: (args: Args) => {
    const x = args.inputs.x!;
    const a = args.attrs as unknown as tf.StridedSliceAttrs;
    if (x.dtype !== 'float32') return runReplaced(tf.StridedSlice, 'cpu', args as unknown as Parameters<tf.KernelFunc>[0]);
    const info = tf.slice_util.sliceInfo(
      [...x.shape], a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask,
    );
    if (info.isIdentity || info.sliceDim0 || info.isSimpleSlice || info.finalShapeSparse.length !== x.shape.length) {
      return runReplaced(tf.StridedSlice, 'cpu', args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const io = ioFor('cpu', args.backend);
    const out = io.alloc(info.finalShape);
    stridedCopy(io.view(x), x.shape, info.begin, info.strides, info.finalShapeSparse, io.view(out));
    return out;
  },
};

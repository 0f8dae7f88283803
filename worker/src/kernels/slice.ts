/**
 * Slice (float32, any rank) for cpu and wasm: both backends copy a non-contiguous slice of rank > 4
 * (cpu: of any rank) element by element through TensorBuffer index conversions. The vectorised
 * Conv4 builds its im2col taps from such slices. Here: an odometer over the outer axes and one flat
 * copy of each innermost run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor, type TrainingBackend } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** out ← x[begin : begin + size] (row-major, x of `shape`). */
export function sliceCopy(x: Float32Array, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Float32Array): void {
  const r = shape.length;
  if (r === 0) {
    out[0] = x[0]!;
    return;
  }
  const strides = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  const n = size[r - 1]!;
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  let src = 0;
  for (let i = 0; i < r; i++) src += begin[i]! * strides[i]!;
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < total; o += n) {
    for (let k = 0; k < n; k++) out[o + k] = x[src + k]!;
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      src += strides[d]!;
      if (idx[d]! < size[d]!) break;
      src -= strides[d]! * size[d]!;
      idx[d] = 0;
    }
  }
}

function sliceConfig(backendName: TrainingBackend): tf.KernelConfig {
  return {
    kernelName: tf.Slice,
    backendName,
    kernelFunc: (args: Args) => {
      const x = args.inputs.x!;
      const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
      // wasm has fast paths up to rank 4; other dtypes: the backend's own kernel.
      if (x.dtype !== 'float32' || (backendName === 'wasm' && x.shape.length <= 4)) {
        return runReplaced(tf.Slice, backendName, args as unknown as Parameters<tf.KernelFunc>[0]);
      }
      const [b, s] = tf.slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
      const io = ioFor(backendName, args.backend);
      const out = io.alloc(s);
      sliceCopy(io.view(x), x.shape, b, s, io.view(out));
      return out;
    },
  };
}

export const sliceCpuConfig = sliceConfig('cpu');
export const sliceWasmConfig = sliceConfig('wasm');

/**
 * PadV2 (float32, any rank) for cpu, whose own kernel converts every element's index to
 * coordinates and back. The gradient of Slice is a Pad, so the vectorised Conv4's backward pass
 * pads every im2col tap. Here: fill with the constant, then copy innermost runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** out (shape x.shape + before + after) ← constant, with x copied at offset `before`. */
export function padCopy(x: Float32Array, shape: readonly number[], paddings: readonly (readonly [number, number])[], value: number, out: Float32Array): void {
  const r = shape.length;
  out.fill(value);
  if (r === 0) {
    out[0] = x[0]!;
    return;
  }
  const outShape = shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
  const os = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; i--) {
    os[i] = s;
    s *= outShape[i]!;
  }
  if (x.length === 0) return;
  let dst = 0;
  for (let i = 0; i < r; i++) dst += paddings[i]![0] * os[i]!;
  const n = shape[r - 1]!;
  const idx = new Array<number>(r).fill(0);
  for (let src = 0; src < x.length; src += n) {
    for (let k = 0; k < n; k++) out[dst + k] = x[src + k]!;
    for (let d = r - 2; d >= 0; d--) {
      idx[d]!++;
      dst += os[d]!;
      if (idx[d]! < shape[d]!) break;
      dst -= os[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export const padV2CpuConfig: tf.KernelConfig = {
  kernelName: tf.PadV2,
  backendName: 'cpu',
  kernelFunc: (args: Args) => {
    const x = args.inputs.x!;
    if (x.dtype !== 'float32') return runReplaced(tf.PadV2, 'cpu', args as unknown as Parameters<tf.KernelFunc>[0]);
    const { paddings, constantValue } = args.attrs as unknown as tf.PadV2Attrs;
    const io = ioFor('cpu', args.backend);
    const out = io.alloc(x.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]));
    padCopy(io.view(x), x.shape, paddings, constantValue, io.view(out));
    return out;
  },
};

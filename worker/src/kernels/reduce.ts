/**
 * Sum and Mean (float32) for cpu and wasm. Both backends transpose the reduced axes to the end
 * first (cpu through a generic per-element Transpose), which made batch norm's per-channel
 * statistics over [N, H, W] one of the largest costs of a Conv4 step. Here the input is read once,
 * in memory order: axes are merged into alternating runs of kept and reduced axes, the innermost
 * run is a flat loop, and sums accumulate in float64. Other dtypes go to the backend's own kernel,
 * and so do wasm reductions over the last axis (its C++ loop is faster there: nothing to transpose).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor, type TensorInfo, type TrainingBackend } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

let acc = new Float64Array(0);

/** out[kept] = Σ over the reduced axes of x (accumulated in float64), divided by the count when `mean`. */
export function reduceSum(x: Float32Array, shape: readonly number[], axes: readonly number[], out: Float32Array, mean: boolean): void {
  const dims: number[] = [];
  const red: boolean[] = [];
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === 1) continue;
    const r = axes.includes(i);
    const k = dims.length - 1;
    if (k >= 0 && red[k] === r) dims[k] = dims[k]! * d;
    else {
      dims.push(d);
      red.push(r);
    }
  }
  const outSize = out.length;
  if (acc.length < outSize) acc = new Float64Array(outSize);
  const a = acc;
  a.fill(0, 0, outSize);
  const count = outSize === 0 ? 0 : x.length / outSize;
  if (dims.length === 0) {
    a[0] = x[0] ?? 0;
  } else if (dims.length === 2 && red[0] && !red[1]) {
    // Leading axes reduced, trailing kept (batch norm's per-channel sums over N, H, W): eight
    // rows per pass over the accumulators, summed pairwise in float64 (~3× faster than one row
    // at a time, which loads and stores every accumulator per row).
    const R = dims[0]!;
    const C = dims[1]!;
    let r = 0;
    let i = 0;
    for (; r + 8 <= R; r += 8, i += 8 * C) {
      for (let k = 0; k < C; k++) {
        const j = i + k;
        a[k] = a[k]! + (((x[j]! + x[j + C]!) + (x[j + 2 * C]! + x[j + 3 * C]!)) + ((x[j + 4 * C]! + x[j + 5 * C]!) + (x[j + 6 * C]! + x[j + 7 * C]!)));
      }
    }
    for (; r < R; r++, i += C) for (let k = 0; k < C; k++) a[k] = a[k]! + x[i + k]!;
  } else {
    const r = dims.length;
    const outStride = new Array<number>(r).fill(0);
    for (let i = r - 1, s = 1; i >= 0; i--) {
      if (!red[i]) {
        outStride[i] = s;
        s *= dims[i]!;
      }
    }
    const n = dims[r - 1]!;
    const lastReduced = red[r - 1]!;
    const rows = x.length / n;
    const idx = new Array<number>(r).fill(0);
    let o = 0;
    for (let row = 0, xi = 0; row < rows; row++, xi += n) {
      if (lastReduced) {
        let s = 0;
        for (let k = 0; k < n; k++) s += x[xi + k]!;
        a[o] = a[o]! + s;
      } else {
        for (let k = 0; k < n; k++) a[o + k] = a[o + k]! + x[xi + k]!;
      }
      for (let d = r - 2; d >= 0; d--) {
        idx[d]!++;
        o += outStride[d]!;
        if (idx[d]! < dims[d]!) break;
        o -= outStride[d]! * dims[d]!;
        idx[d] = 0;
      }
    }
  }
  if (mean) for (let i = 0; i < outSize; i++) out[i] = a[i]! / count;
  else for (let i = 0; i < outSize; i++) out[i] = a[i]!;
}

function reduceConfig(kernelName: string, backendName: TrainingBackend, mean: boolean): tf.KernelConfig {
  return {
    kernelName,
    backendName,
    kernelFunc: (args: Args) => {
      const x = args.inputs.x!;
      if (x.dtype !== 'float32') return runReplaced(kernelName, backendName, args as unknown as Parameters<tf.KernelFunc>[0]);
      const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
      const axes = tf.util.parseAxisParam(axis, x.shape);
      // wasm's own kernel is faster when only trailing axes are reduced (no transpose needed).
      if (backendName === 'wasm' && axes.includes(x.shape.length - 1)) {
        return runReplaced(kernelName, backendName, args as unknown as Parameters<tf.KernelFunc>[0]);
      }
      const kept = x.shape.filter((_, i) => !axes.includes(i));
      const shape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : kept;
      const io = ioFor(backendName, args.backend);
      const out: TensorInfo = io.alloc(shape);
      reduceSum(io.view(x), x.shape, axes, io.view(out), mean);
      return out;
    },
  };
}

export const sumConfigs: readonly tf.KernelConfig[] = [reduceConfig(tf.Sum, 'cpu', false), reduceConfig(tf.Sum, 'wasm', false)];
export const meanConfigs: readonly tf.KernelConfig[] = [reduceConfig(tf.Mean, 'cpu', true), reduceConfig(tf.Mean, 'wasm', true)];

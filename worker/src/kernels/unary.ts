/**
 * Relu, Step and Square for the cpu backend (float32). tfjs-backend-cpu runs every simple unary op
 * through one shared loop that calls the op as a closure per element (`newValues[i] = op(x[i])`);
 * with a dozen ops sharing it the call site is megamorphic and never inlined: ~10 ns per element
 * (Relu ~40 ms, Step ~35 ms on a [75, 28, 28, 64] block-1 activation; with its gradient's Step,
 * ~7% of a Conv4 5w1s FOMAML task on cpu, measured with a per-kernel profile). Here each op is its
 * own flat loop, and branch-free: activations are positive about half the time in no pattern, so a
 * `v > 0 ? … : …` mispredicts every other element (~6 ns each, measured: 21 ms vs 3 ms for the
 * same Relu loop written with Math.abs). Results are identical: Relu = Math.max(0, x) (NaN stays
 * NaN, −0 and −Infinity become 0), Step = NaN for NaN, 1 for x > 0, else alpha; Square = x·x
 * rounded to float32. The NaN tests are branches too, but never taken on real data. Other dtypes
 * go to the backend's own kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

export function reluInto(x: Float32Array, out: Float32Array): void {
  for (let i = 0, n = x.length; i < n; i++) {
    const v = x[i]!;
    // (v + |v|)/2 is exact (float32 operands in float64); NaN only for NaN and −Infinity.
    const r = (v + Math.abs(v)) * 0.5;
    out[i] = r === r ? r : v === v ? 0 : v;
  }
}

export function stepInto(x: Float32Array, alpha: number, out: Float32Array): void {
  if (alpha === 0) {
    for (let i = 0, n = x.length; i < n; i++) {
      const v = x[i]!;
      out[i] = v === v ? +(v > 0) : v;
    }
    return;
  }
  for (let i = 0, n = x.length; i < n; i++) {
    const v = x[i]!;
    const b = +(v > 0);
    out[i] = v === v ? b + (1 - b) * alpha : v; // b = 1: 1 + 0·alpha; b = 0: alpha
  }
}

export function squareInto(x: Float32Array, out: Float32Array): void {
  for (let i = 0, n = x.length; i < n; i++) {
    const v = x[i]!;
    out[i] = v * v;
  }
}

function unaryConfig(kernelName: string, fill: (x: Float32Array, out: Float32Array, attrs: tf.NamedAttrMap | undefined) => void): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'cpu',
    kernelFunc: (args: Args) => {
      const x = args.inputs.x!;
      if (x.dtype !== 'float32') return runReplaced(kernelName, 'cpu', args as unknown as Parameters<tf.KernelFunc>[0]);
      const io = ioFor('cpu', args.backend);
      const out = io.alloc(x.shape);
      fill(io.view(x), io.view(out), args.attrs);
      return out;
    },
  };
}

export const reluCpuConfig = unaryConfig(tf.Relu, (x, out) => reluInto(x, out));
export const stepCpuConfig = unaryConfig(tf.Step, (x, out, attrs) => stepInto(x, Number((attrs as { alpha?: number } | undefined)?.alpha ?? 0), out));
export const squareCpuConfig = unaryConfig(tf.Square, (x, out) => squareInto(x, out));

/**
 * MaxPool (forward, float32) for the cpu backend. tfjs-backend-cpu's pool loop has the channel
 * axis outermost, so every window read jumps across the NHWC input (stride C), and it writes
 * through a TensorBuffer: ~6 ns per input element (~21 ms on a [75, 28, 28, 64] block-1 activation,
 * ~2.5% of a Conv4 5w1s FOMAML task on cpu, per-kernel profile). Here windows are walked with the
 * channel axis innermost (contiguous reads), keeping a running max per channel in the output row,
 * branch-free for non-negative inputs (see maxPoolInto). Same result: the max of the window's in-bounds values, where NaN never wins (an all-NaN window
 * gives −Infinity), as upstream. Other dtypes go to the backend's own kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ioFor } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/**
 * out ← max pool of x (NHWC) with the geometry `p`. Fast path for inputs that are all ≥ 0 and not
 * NaN (a pool after ReLU): there the float32 bit patterns order like the values, so the max is an
 * integer max, computed branch-free (`m − (d & (d >> 31))`; the difference of two such patterns fits
 * in int32). `if (v > max)` on activations mispredicts about every other comparison (~4× slower).
 * The fast path notes any input with the sign bit set or a NaN as it goes; if it saw one, the
 * generic loop (upstream's comparison, NaN never wins) recomputes the output. Returns whether the
 * fast path held.
 */
export function maxPoolInto(x: Float32Array, p: tf.backend_util.Conv2DInfo, out: Float32Array): boolean {
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const oi = new Int32Array(out.buffer, out.byteOffset, out.length);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  const { strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = p;
  const EFH = p.effectiveFilterHeight;
  const EFW = p.effectiveFilterWidth;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  let any = 0; // OR of every bit pattern read: < 0 once a sign bit was set
  let most = 0; // largest window max: > 0x7f800000 (+Infinity) once a NaN was read
  let o = 0;
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let i = 0; i < OH; i++) {
      const r0 = i * SH - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(H, r0 + EFH);
      for (let j = 0; j < OW; j++, o += C) {
        const c0 = j * SW - left;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(W, c0 + EFW);
        if (rMax - rMin === 2 && cMax - cMin === 2 && DH === 1 && DW === 1) {
          // A full 2×2 window (the Conv4 pool): the running max in locals.
          const p0 = xN + (rMin * W + cMin) * C;
          const p1 = p0 + C;
          const p2 = p0 + W * C;
          const p3 = p2 + C;
          for (let c = 0; c < C; c++) {
            const a = xi[p0 + c]!;
            const b = xi[p1 + c]!;
            const e = xi[p2 + c]!;
            const f = xi[p3 + c]!;
            any |= a | b | e | f;
            let d = a - b;
            let m = a - (d & (d >> 31));
            d = m - e;
            m -= d & (d >> 31);
            d = m - f;
            m -= d & (d >> 31);
            oi[o + c] = m;
            most = m > most ? m : most;
          }
          continue;
        }
        for (let c = 0; c < C; c++) oi[o + c] = 0xff800000 | 0; // −Infinity (empty window)
        let first = true;
        for (let r = rMin; r < rMax; r += DH) {
          for (let q = cMin; q < cMax; q += DW) {
            const base = xN + (r * W + q) * C;
            if (first) {
              for (let c = 0; c < C; c++) {
                const v = xi[base + c]!;
                any |= v;
                oi[o + c] = v;
              }
              first = false;
              continue;
            }
            for (let c = 0; c < C; c++) {
              const v = xi[base + c]!;
              const m = oi[o + c]!;
              any |= v;
              const d = m - v;
              oi[o + c] = m - (d & (d >> 31));
            }
          }
        }
        for (let c = 0; c < C; c++) {
          const m = oi[o + c]!;
          most = m > most ? m : most;
        }
      }
    }
  }
  if (any >= 0 && most <= 0x7f800000) return true;
  maxPoolGeneric(x, p, out);
  return false;
}

/** out ← max pool of x, windows walked channel-innermost, upstream's `v > max` (NaN never wins). */
export function maxPoolGeneric(x: Float32Array, p: tf.backend_util.Conv2DInfo, out: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = p;
  const { strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = p;
  const top = p.padInfo.top;
  const left = p.padInfo.left;
  let o = 0;
  for (let n = 0; n < N; n++) {
    const xN = n * H * W * C;
    for (let i = 0; i < OH; i++) {
      const r0 = i * SH - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(H, r0 + p.effectiveFilterHeight);
      for (let j = 0; j < OW; j++, o += C) {
        const c0 = j * SW - left;
        const cMin = Math.max(0, c0);
        const cMax = Math.min(W, c0 + p.effectiveFilterWidth);
        for (let c = 0; c < C; c++) out[o + c] = Number.NEGATIVE_INFINITY;
        for (let r = rMin; r < rMax; r += DH) {
          for (let q = cMin; q < cMax; q += DW) {
            const base = xN + (r * W + q) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c]!;
              if (v > out[o + c]!) out[o + c] = v;
            }
          }
        }
      }
    }
  }
}

export const maxPoolCpuConfig: tf.KernelConfig = {
  kernelName: tf.MaxPool,
  backendName: 'cpu',
  kernelFunc: (args: Args) => {
    const x = args.inputs.x!;
    if (x.dtype !== 'float32') return runReplaced(tf.MaxPool, 'cpu', args as unknown as Parameters<tf.KernelFunc>[0]);
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolAttrs;
    const p = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
    const io = ioFor('cpu', args.backend);
    const out = io.alloc(p.outShape);
    // A 1×1 window that keeps the shape is the identity upstream (NaN passes through): copy.
    if (p.filterHeight === 1 && p.filterWidth === 1 && p.outShape.join() === x.shape.join()) io.view(out).set(io.view(x));
    else maxPoolInto(io.view(x), p, io.view(out));
    return out;
  },
};

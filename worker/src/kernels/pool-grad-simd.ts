/**
 * The wasm backend's MaxPoolGrad/AvgPoolGrad as SIMD wasm (pool-grad.wat, built into
 * dist/kernels/pool-grad.wasm): a small module instantiated against tfjs-backend-wasm's own
 * WebAssembly.Memory (its emscripten Module exports it as `asm.memory`; binding in ./wasm-heap.ts,
 * shared with the other heap kernels), so it reads x and dy and
 * writes dx where they already live on the backend's heap — no copies, one pass, f32x4 over the
 * channel axis. Needs C % 4 == 0; the callers keep their JS loops for other C and for a backend
 * whose memory cannot be reached (then wasmPoolGradStatus() says why).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { heapKernels, type HeapModule } from './wasm-heap.js';

type PoolInfo = tf.backend_util.Conv2DInfo;

interface Exports {
  max_pool_grad(x: number, dy: number, dx: number, ...dims: number[]): void;
  avg_pool_grad(dy: number, dx: number, ...dimsScaleAcc: number[]): void;
  zero_uncovered(dx: number, ...dimsCols: number[]): void;
}

export interface WasmPoolGrad {
  /** dx (allocated, any contents) = MaxPoolGrad(x, dy); `dxView` is dx's heap view for zeroing. */
  maxPoolGrad(x: tf.TensorInfo, dy: tf.TensorInfo, dx: tf.TensorInfo, dxView: Float32Array, p: PoolInfo): void;
  /** dx (allocated, any contents) = AvgPoolGrad(dy), each share divided by the full window. */
  avgPoolGrad(dy: tf.TensorInfo, dx: tf.TensorInfo, dxView: Float32Array, p: PoolInfo): void;
}

const kernels = heapKernels<Exports>('pool-grad.wasm');
const wrapped = new WeakMap<HeapModule<Exports>, WasmPoolGrad>();

/** Does some window cover every pixel of this axis (non-overlapping windows, before >= 0)? */
function allCovered(size: number, out: number, filter: number, stride: number, before: number): boolean {
  for (let t = before; t < before + size; t++) if (t >= out * stride || t % stride >= filter) return false;
  return true;
}

function wrap({ exports: ex, at }: HeapModule<Exports>): WasmPoolGrad {
  const dims = (p: PoolInfo) => [
    p.batchSize, p.inHeight, p.inWidth, p.inChannels, p.outHeight, p.outWidth,
    p.filterHeight, p.filterWidth, p.strideHeight, p.strideWidth, p.padInfo.top, p.padInfo.left,
  ];
  /** Store once (and zero what no window covers) when windows do not overlap, else zero and add. */
  const prepare = (dx: tf.TensorInfo, dxView: Float32Array, p: PoolInfo) => {
    if (p.strideHeight < p.filterHeight || p.strideWidth < p.filterWidth) {
      dxView.fill(0);
      return 1;
    }
    const rows = allCovered(p.inHeight, p.outHeight, p.filterHeight, p.strideHeight, p.padInfo.top);
    const cols = allCovered(p.inWidth, p.outWidth, p.filterWidth, p.strideWidth, p.padInfo.left);
    if (!rows || !cols) ex.zero_uncovered(at(dx), ...dims(p), cols ? 0 : 1);
    return 0;
  };
  return {
    maxPoolGrad(x, dy, dx, dxView, p) {
      const acc = prepare(dx, dxView, p);
      ex.max_pool_grad(at(x), at(dy), at(dx), ...dims(p), acc);
    },
    avgPoolGrad(dy, dx, dxView, p) {
      const acc = prepare(dx, dxView, p);
      ex.avg_pool_grad(at(dy), at(dx), ...dims(p), 1 / (p.filterHeight * p.filterWidth), acc);
    },
  };
}

/** The SIMD kernels bound to this wasm backend's heap, or undefined (wasmPoolGradStatus says why). */
export function wasmPoolGrad(backend: unknown): WasmPoolGrad | undefined {
  const m = kernels.get(backend);
  if (m === undefined) return undefined;
  let r = wrapped.get(m);
  if (r === undefined) {
    r = wrap(m);
    wrapped.set(m, r);
  }
  return r;
}

/** 'simd' when the SIMD kernels run on this backend, else why the JS loops do. */
export function wasmPoolGradStatus(backend: unknown): string {
  return kernels.status(backend);
}

/** Does this pool take the SIMD path (channels a positive multiple of 4)? */
export function simdPoolShape(p: PoolInfo): boolean {
  return p.inChannels > 0 && p.inChannels % 4 === 0 && p.batchSize * p.inHeight * p.inWidth > 0;
}

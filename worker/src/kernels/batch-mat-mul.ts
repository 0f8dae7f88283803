/**
 * BatchMatMul (float32).
 * cpu: large products on the GEMM of ./gemm.ts, which reads transposed operands through strides
 *   (small ones stay on the backend's own kernel: less per-call overhead).
 * wasm: its own kernel is fast (XNNPACK) only for one matrix without transposes (measured on
 *   [15680×576]ᵀ·[15680×64]: 520 ms with transposeA, 43 ms without; a batch of 2 plain products of
 *   [15680×576]·[576×64]: ~80× slower than 2 single ones), and matMul's gradients are transposed
 *   products. So a large transposed operand is transposed first with the backend's Transpose, and
 *   a batch of large products runs as single products on copies of each slice.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm } from './gemm.js';
import { ioFor, type KernelIo, type TensorInfo } from './io.js';
import { runReplaced } from './replaced-kernels.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** Products smaller than this (M·N·K) keep the backend's own kernel on cpu. */
const CPU_MIN_WORK = 1 << 18;
/** Transposed wasm operands smaller than this (elements) are left to the backend's own kernel. */
const WASM_MIN_TRANSPOSE = 1 << 14;
/** wasm batches whose single products are smaller than this (M·N·K) stay on the backend's own loop. */
const WASM_MIN_SPLIT = 1 << 16;

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function dims(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean) {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const K = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return { M, K, N, batchA, batchB, outer };
}

export const batchMatMulCpuConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'cpu',
  kernelFunc: (args: Args) => {
    const a = args.inputs.a!;
    const b = args.inputs.b!;
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const d = dims(a, b, transposeA, transposeB);
    const batch = size(d.outer);
    const simpleBatch = (d.batchA === batch || d.batchA === 1) && (d.batchB === batch || d.batchB === 1);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || !simpleBatch || d.M * d.N * d.K < CPU_MIN_WORK) {
      return runReplaced(tf.BatchMatMul, 'cpu', args as unknown as Parameters<tf.KernelFunc>[0]);
    }
    const io = ioFor('cpu', args.backend);
    const { M, K, N } = d;
    const out = io.alloc([...d.outer, M, N]);
    const av = io.view(a);
    const bv = io.view(b);
    const ov = io.view(out);
    for (let i = 0; i < batch; i++) {
      const aOff = d.batchA === 1 ? 0 : i * M * K;
      const bOff = d.batchB === 1 ? 0 : i * K * N;
      const A = transposeA ? { data: av, offset: aOff, rowStride: 1, colStride: M } : { data: av, offset: aOff, rowStride: K, colStride: 1 };
      const B = transposeB ? { data: bv, offset: bOff, rowStride: 1, colStride: K } : { data: bv, offset: bOff, rowStride: N, colStride: 1 };
      gemm(M, N, K, A, B, ov.subarray(i * M * N, (i + 1) * M * N));
    }
    return out;
  },
};

/** Matrix `i` of a [batch, r, c] tensor as a new [1, r, c] tensor (or the tensor itself when batch is 1). */
function matrixOf(io: KernelIo, t: TensorInfo, i: number, batch: number, temps: TensorInfo[]): TensorInfo {
  const rows = t.shape[t.shape.length - 2]!;
  const cols = t.shape[t.shape.length - 1]!;
  if (batch === 1) return { ...t, shape: [1, rows, cols] };
  const m = io.alloc([1, rows, cols]);
  temps.push(m);
  io.view(m).set(io.view(t).subarray(i * rows * cols, (i + 1) * rows * cols));
  return m;
}

export const batchMatMulWasmConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  kernelFunc: (args: Args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const d = dims(a, b, transposeA, transposeB);
    const batch = size(d.outer);
    const split = batch > 1 && d.M * d.N * d.K >= WASM_MIN_SPLIT && (d.batchA === batch || d.batchA === 1) && (d.batchB === batch || d.batchB === 1);
    const flipA = transposeA && (split || size(a.shape) >= WASM_MIN_TRANSPOSE);
    const flipB = transposeB && (split || size(b.shape) >= WASM_MIN_TRANSPOSE);
    if (!flipA && !flipB && !split) return runReplaced(tf.BatchMatMul, 'wasm', args as unknown as Parameters<tf.KernelFunc>[0]);
    const io = ioFor('wasm', args.backend);
    const swapLast = (t: TensorInfo) => {
      const perm = t.shape.map((_, i) => i);
      perm[perm.length - 1] = perm.length - 2;
      perm[perm.length - 2] = perm.length - 1;
      return io.run('Transpose', { x: t }, { perm });
    };
    const temps: TensorInfo[] = [];
    const plain = (x: TensorInfo, y: TensorInfo) =>
      runReplaced(tf.BatchMatMul, 'wasm', {
        inputs: { a: x, b: y },
        backend: args.backend as tf.KernelBackend,
        attrs: { transposeA: transposeA && !flipA, transposeB: transposeB && !flipB },
      }) as TensorInfo;
    try {
      const a2 = flipA ? swapLast(a) : a;
      if (flipA) temps.push(a2);
      const b2 = flipB ? swapLast(b) : b;
      if (flipB) temps.push(b2);
      if (!split) return plain(a2, b2);
      const { M, N } = d;
      const out = io.alloc([...d.outer, M, N]);
      for (let i = 0; i < batch; i++) {
        const part: TensorInfo[] = [];
        const r = plain(matrixOf(io, a2, i, d.batchA, part), matrixOf(io, b2, i, d.batchB, part));
        part.push(r);
        io.view(out).set(io.view(r), i * M * N);
        for (const t of part) io.dispose(t);
      }
      return out;
    } finally {
      for (const t of temps) io.dispose(t);
    }
  },
};

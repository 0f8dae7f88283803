/**
 * BatchMatMul (float32).
 * cpu: large products on the GEMM of ./gemm.ts, which reads transposed operands through strides
 *   (small ones stay on the backend's own kernel: less per-call overhead).
 * wasm: its own kernel is fast only without transposes (measured on [15680×576]ᵀ·[15680×64]: 520 ms
 *   with transposeA, 43 ms without), and matMul's gradients are transposed products. A large
 *   transposed operand is transposed first with the backend's Transpose, then multiplied plainly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gemm } from './gemm.js';
import { ioFor, type TensorInfo } from './io.js';
import { runReplaced } from './previous.js';

interface Args {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** Products smaller than this (M·N·K) keep the backend's own kernel on cpu. */
const CPU_MIN_WORK = 1 << 18;
/** Transposed wasm operands smaller than this (elements) are left to the backend's own kernel. */
const WASM_MIN_TRANSPOSE = 1 << 14;

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
  kernelFunc: ((args: Args) => {
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
  }) as unknown as tf.KernelFunc,
};

export const batchMatMulWasmConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  kernelFunc: ((args: Args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const flipA = transposeA && size(a.shape) >= WASM_MIN_TRANSPOSE;
    const flipB = transposeB && size(b.shape) >= WASM_MIN_TRANSPOSE;
    if (!flipA && !flipB) return runReplaced(tf.BatchMatMul, 'wasm', args as unknown as Parameters<tf.KernelFunc>[0]);
    const io = ioFor('wasm', args.backend);
    const swapLast = (t: TensorInfo) => {
      const perm = t.shape.map((_, i) => i);
      perm[perm.length - 1] = perm.length - 2;
      perm[perm.length - 2] = perm.length - 1;
      return io.run('Transpose', { x: t }, { perm });
    };
    const temps: TensorInfo[] = [];
    try {
      const a2 = flipA ? swapLast(a) : a;
      if (flipA) temps.push(a2);
      const b2 = flipB ? swapLast(b) : b;
      if (flipB) temps.push(b2);
      return runReplaced(tf.BatchMatMul, 'wasm', {
        inputs: { a: a2, b: b2 },
        backend: args.backend as tf.KernelBackend,
        attrs: { transposeA: transposeA && !flipA, transposeB: transposeB && !flipB },
      }) as TensorInfo;
    } finally {
      for (const t of temps) io.dispose(t);
    }
  }) as unknown as tf.KernelFunc,
};

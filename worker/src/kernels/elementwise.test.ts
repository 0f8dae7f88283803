/**
 * The elementwise and reduction kernels (cpu Add/Sub/Multiply/RealDiv with broadcasting; cpu and
 * wasm Sum/Mean) against float64 references, on the shapes batch norm and the losses produce and
 * on odd ones; other dtypes fall back to the backends' own kernels.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { wasmDirectory } from '../backend.js';
import { randomTensor } from '@metaloop/testing/numerics';
import { initTestBackend, sideBySideBackends } from '../testing/backend.js';
import { relativeError } from './reference.js';
import { registerTrainingKernels } from './register.js';

const BINARY: [number[], number[]][] = [
  [[3, 5, 7, 4], [4]],
  [[3, 5, 7, 4], [1, 1, 1, 4]],
  [[2, 3, 5, 7, 4], [2, 1, 1, 1, 4]],
  [[4], [3, 5, 7, 4]],
  [[3, 1, 7], [1, 5, 1]],
  [[6, 5], [6, 5]],
  [[6, 5], []],
  [[], [2, 3]],
  [[2, 1, 3], [2, 4, 1]],
  [[5, 1], [5, 6]],
];

const REDUCE: [number[], number[]][] = [
  [[3, 5, 7, 4], [0, 1, 2]],
  [[2, 3, 5, 7, 4], [1, 2, 3]],
  [[3, 5, 7, 4], [3]],
  [[3, 5, 7, 4], [1]],
  [[3, 5, 7, 4], [0, 2]],
  [[3, 1, 7, 4], [0, 1, 2, 3]],
  [[6], [0]],
  [[2, 3], []],
];

function bcastRef(op: (a: number, b: number) => number, a: Float32Array, as: number[], b: Float32Array, bs: number[]): { v: number[]; shape: number[] } {
  const shape = tf.backend_util.assertAndGetBroadcastShape(as, bs);
  const r = shape.length;
  const size = shape.reduce((x, y) => x * y, 1);
  const v: number[] = [];
  const at = (data: Float32Array, s: number[], loc: number[]) => {
    let i = 0;
    for (let d = 0; d < s.length; d++) i = i * s[d]! + (s[d] === 1 ? 0 : loc[r - s.length + d]!);
    return data[i]!;
  };
  for (let i = 0; i < size; i++) {
    const loc: number[] = [];
    for (let d = r - 1, rem = i; d >= 0; d--) {
      loc[d] = rem % shape[d]!;
      rem = Math.floor(rem / shape[d]!);
    }
    v.push(op(at(a, as, loc), at(b, bs, loc)));
  }
  return { v, shape };
}

describe('elementwise and reduction kernels', () => {
  before(async () => {
    // As in the worker: kernels registered first, backends initialised afterwards.
    registerTrainingKernels();
    setWasmPaths(wasmDirectory());
    await tf.setBackend('wasm');
    if (sideBySideBackends().includes('tensorflow')) await initTestBackend('tensorflow');
    await tf.setBackend('cpu');
  });

  const ops = [
    ['add', tf.add, (a: number, b: number) => a + b],
    ['sub', tf.sub, (a: number, b: number) => a - b],
    ['mul', tf.mul, (a: number, b: number) => a * b],
    ['div', tf.div, (a: number, b: number) => a / b],
  ] as const;
  for (const [as, bs] of BINARY) {
    test(`cpu: add/sub/mul/div [${String(as)}] ∘ [${String(bs)}] vs float64`, async () => {
      await tf.setBackend('cpu');
      const rng = new Rng(as.length * 10 + bs.length);
      tf.tidy(() => {
        const a = randomTensor(rng, as);
        const b = tf.add(randomTensor(rng, bs, 0.5, 2), 0); // away from 0 for div
        for (const [name, f, ref] of ops) {
          const out = f(a, b);
          const want = bcastRef(ref, a.dataSync() as Float32Array, as, b.dataSync() as Float32Array, bs);
          assert.deepEqual(out.shape, want.shape, name);
          assert.ok(relativeError(out.dataSync(), want.v) < 1e-6, name);
        }
      });
    });
  }

  test('cpu: int32 operands still work (the backend\'s own kernel)', async () => {
    await tf.setBackend('cpu');
    assert.deepEqual(Array.from(tf.add(tf.tensor1d([1, 2], 'int32'), tf.scalar(3, 'int32')).dataSync()), [4, 5]);
    assert.deepEqual(Array.from(tf.sum(tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32'), 0).dataSync()), [4, 6]);
  });

  for (const backend of sideBySideBackends()) {
    for (const [shape, axes] of REDUCE) {
      test(`${backend}: sum/mean of [${String(shape)}] over [${String(axes)}] (keepDims both ways) vs float64`, async () => {
        await tf.setBackend(backend);
        const rng = new Rng(shape.length * 100 + axes.length);
        tf.tidy(() => {
          const x = randomTensor(rng, shape);
          const xs = x.dataSync();
          const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
          const count = shape.filter((_, i) => axes.includes(i)).reduce((a, b) => a * b, 1);
          const ref = new Float64Array(outShape.reduce((a, b) => a * b, 1));
          const strides = tf.util.computeStrides(outShape);
          for (let i = 0; i < xs.length; i++) {
            let rem = i;
            let o = 0;
            for (let d = shape.length - 1; d >= 0; d--) {
              const c = rem % shape[d]!;
              rem = Math.floor(rem / shape[d]!);
              if (outShape[d] !== 1) o += c * (d < shape.length - 1 ? strides[d]! : 1);
            }
            ref[o]! += xs[i]!;
          }
          for (const keepDims of [false, true]) {
            const s = tf.sum(x, axes, keepDims);
            const m = tf.mean(x, axes, keepDims);
            assert.deepEqual(s.shape, keepDims ? outShape : shape.filter((_, i) => !axes.includes(i)));
            assert.ok(relativeError(s.dataSync(), ref) < 1e-6, 'sum');
            assert.ok(relativeError(m.dataSync(), ref.map((v) => v / count)) < 1e-6, 'mean');
          }
        });
      });
    }
  }

  function refMatMul(a: Float32Array, as: number[], b: Float32Array, bs: number[], ta: boolean, tb: boolean): Float64Array {
    const [M, K] = ta ? [as.at(-1)!, as.at(-2)!] : [as.at(-2)!, as.at(-1)!];
    const N = tb ? bs.at(-2)! : bs.at(-1)!;
    const batchA = a.length / (M * K);
    const batchB = b.length / (K * N);
    const batch = Math.max(batchA, batchB);
    const out = new Float64Array(batch * M * N);
    for (let t = 0; t < batch; t++)
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            const av = a[(batchA === 1 ? 0 : t * M * K) + (ta ? k * M + i : i * K + k)]!;
            const bv = b[(batchB === 1 ? 0 : t * K * N) + (tb ? j * K + k : k * N + j)]!;
            s += av * bv;
          }
          out[(t * M + i) * N + j] = s;
        }
    return out;
  }

  for (const backend of sideBySideBackends()) {
    test(`${backend}: batched matMul, all transposes, batch broadcast, large enough for the replacement path`, async () => {
      await tf.setBackend(backend);
      const rng = new Rng(77);
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        for (const [ba, bb] of [[3, 3], [1, 3], [3, 1]] as const) {
          tf.tidy(() => {
            const [M, K, N] = [70, 130, 65];
            const as = [ba, ...(ta ? [K, M] : [M, K])];
            const bs = [bb, ...(tb ? [N, K] : [K, N])];
            const a = randomTensor(rng, as);
            const b = randomTensor(rng, bs);
            const out = tf.matMul(a, b, ta, tb);
            assert.deepEqual(out.shape, [Math.max(ba, bb), M, N]);
            const e = relativeError(out.dataSync(), refMatMul(a.dataSync() as Float32Array, as, b.dataSync() as Float32Array, bs, ta, tb));
            assert.ok(e < 1e-5, `transposeA ${ta} transposeB ${tb} batches ${ba}/${bb}: rel err ${e}`);
          });
        }
      }
    });

    test(`${backend}: slice (ranks 1–6) and pad (cpu's own kernel replaced) vs index arithmetic`, async () => {
      await tf.setBackend(backend);
      const rng = new Rng(31);
      const shapes = [[7], [4, 6], [3, 5, 4], [2, 5, 6, 3], [2, 3, 5, 4, 3], [2, 4, 3, 2, 3, 2]];
      for (const shape of shapes) {
        tf.tidy(() => {
          const x = randomTensor(rng, shape);
          const xs = x.arraySync();
          const begin = shape.map((d) => Math.floor(d / 3));
          const size = shape.map((d, i) => Math.max(1, d - begin[i]! - (i % 2)));
          const got = tf.slice(x, begin, size).arraySync();
          const sl = (v: unknown, d: number): unknown => (d === shape.length ? v : (v as unknown[]).slice(begin[d], begin[d]! + size[d]!).map((w) => sl(w, d + 1)));
          assert.deepEqual(got, sl(xs, 0), `slice of [${String(shape)}]`);
          const pads = shape.map((_, i) => [i % 2, (i + 1) % 3] as [number, number]);
          const padded = tf.pad(x, pads, 0.5);
          const back = tf.slice(padded, pads.map((p) => p[0]), shape).arraySync();
          assert.deepEqual(back, xs, `pad of [${String(shape)}] keeps x`);
          const total = padded.size;
          const sum = tf.sum(padded).dataSync()[0]!;
          assert.ok(Math.abs(sum - (tf.sum(x).dataSync()[0]! + 0.5 * (total - x.size))) < 1e-3, 'pad fills with the constant');
        });
      }
    });
  }
});

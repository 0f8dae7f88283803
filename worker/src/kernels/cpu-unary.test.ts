/**
 * The cpu Relu, Step, Square, MaxPool and StridedSlice kernels against tfjs-backend-cpu's own (run
 * directly on the same tensors): random inputs of odd sizes plus NaN, ±Infinity and ±0, which must
 * come out exactly as upstream's (bit for bit); pools after ReLU (the fast path), of mixed signs and
 * with NaNs (the generic path); strided slices with negative strides and every mask; other dtypes
 * fall back to the backend's own kernels. MaxPoolGrad's branch-free path for non-overlapping
 * windows against its generic loop (bit for bit) and a float64 reference.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { randomTensor } from '@metaloop/testing/numerics';
import { maxPoolGradDisjoint, maxPoolGradGeneric } from './max-pool-grad.js';
import { maxPoolGradRef, relativeError } from './reference.js';
import { registerTrainingKernels, upstreamKernel } from './register.js';

const SPECIAL = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 1e-40, -1e-40, 3.4e38, -3.4e38];

function withSpecials(rng: Rng, shape: number[]): tf.Tensor {
  const x = randomTensor(rng, shape).dataSync() as Float32Array;
  const v = Float32Array.from(x);
  SPECIAL.forEach((s, i) => {
    v[(i * 7919) % v.length] = s;
  });
  return tf.tensor(v, shape);
}

/** Run the backend's own kernel `name` on the cpu backend. */
function own(name: string, inputs: tf.NamedTensorInfoMap, attrs: object = {}): tf.Tensor {
  const cpu = tf.findBackend('cpu');
  const out = upstreamKernel(name, 'cpu')!.kernelFunc({ inputs, backend: cpu, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  return tf.engine().makeTensorFromTensorInfo(out, cpu);
}

function assertSameBits(got: tf.Tensor, want: tf.Tensor, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const a = got.dataSync();
  const b = want.dataSync();
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]}, upstream ${b[i]}`);
  }
}

describe('cpu unary, max-pool and strided-slice kernels', () => {
  before(async () => {
    registerTrainingKernels();
    await tf.setBackend('cpu');
  });

  for (const shape of [[7], [3, 5, 7, 4], [2, 9, 11, 3], [1, 1]]) {
    test(`Relu, Step (alpha 0 and 0.3), Square of [${String(shape)}] with NaN/±Infinity/±0 equal upstream bit for bit`, () => {
      const rng = new Rng(shape.length * 13 + shape[0]!);
      tf.tidy(() => {
        const x = withSpecials(rng, shape);
        assertSameBits(tf.relu(x), own('Relu', { x }), 'Relu');
        assertSameBits(tf.step(x), own('Step', { x }, { alpha: 0 }), 'Step');
        assertSameBits(tf.step(x, 0.3), own('Step', { x }, { alpha: 0.3 }), 'Step alpha 0.3');
        assertSameBits(tf.square(x), own('Square', { x }), 'Square');
      });
    });
  }

  const POOLS = [
    { x: [3, 8, 10, 5], size: 2, s: 2, pad: 'valid' },
    { x: [2, 7, 9, 3], size: 2, s: 2, pad: 'valid' }, // odd sizes: last row/column dropped
    { x: [2, 7, 9, 3], size: 2, s: 2, pad: 'same' }, // partial windows at the edge
    { x: [3, 7, 7, 2], size: 3, s: 2, pad: 'same' },
    { x: [2, 6, 5, 3], size: 3, s: 1, pad: 'same' },
    { x: [2, 6, 5, 3], size: 1, s: 1, pad: 'valid' }, // identity upstream
  ] as const;
  for (const p of POOLS) {
    test(`MaxPool x [${String(p.x)}] ${p.size}/${p.s} ${p.pad}: after ReLU (ties at 0), mixed signs, NaNs — equal upstream bit for bit`, () => {
      const rng = new Rng((p.x as readonly number[]).reduce((a, b) => a * 3 + b, p.size));
      const attrs = { filterSize: p.size, strides: p.s, pad: p.pad };
      tf.tidy(() => {
        const mixed = randomTensor(rng, [...p.x]);
        const cases: [string, tf.Tensor][] = [
          ['after relu', tf.relu(mixed)],
          ['mixed signs', mixed],
          ['with NaN, ±Infinity, ±0', withSpecials(rng, [...p.x])],
          ['relu with NaN', tf.relu(withSpecials(rng, [...p.x]))],
        ];
        for (const [what, x] of cases) {
          assertSameBits(tf.maxPool(x as tf.Tensor4D, p.size, p.s, p.pad), own('MaxPool', { x }, attrs), `MaxPool ${what}`);
        }
      });
    });
  }

  // MaxPoolGrad, non-overlapping windows (stride ≥ filter): the integer path (inputs ≥ 0, no NaN)
  // or, on any other input, the generic loop; either way bit for bit what the generic loop gives.
  const GRAD_POOLS: { x: number[]; size: number | [number, number]; s: number | [number, number]; pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]] }[] = [
    { x: [3, 8, 10, 5], size: 2, s: 2, pad: 'valid' }, // every window a full 2×2
    { x: [2, 7, 9, 3], size: 2, s: 2, pad: 'valid' }, // last row and column in no window
    { x: [2, 7, 9, 3], size: 2, s: 2, pad: 'same' }, // partial windows at the far edge
    { x: [2, 9, 10, 4], size: 3, s: 3, pad: 'valid' }, // 3×3 windows, column 9 uncovered
    { x: [2, 7, 7, 2], size: 3, s: 3, pad: 'same' }, // padding before: partial windows at both edges
    { x: [2, 9, 9, 3], size: 2, s: 3, pad: 'valid' }, // gaps between windows
    { x: [2, 7, 6, 5], size: [2, 3], s: [2, 3], pad: [[0, 0], [1, 0], [0, 1], [0, 0]] }, // explicit padding
    { x: [1, 6, 8, 3], size: 2, s: 2, pad: [[0, 0], [3, 3], [1, 1], [0, 0]] }, // windows all padding
    { x: [2, 5, 6, 1], size: 2, s: 2, pad: 'same' }, // one channel
  ];
  for (const p of GRAD_POOLS) {
    test(`MaxPoolGrad x [${String(p.x)}] ${String(p.size)}/${String(p.s)} ${typeof p.pad === 'string' ? p.pad : 'explicit'}: after ReLU, ties, mixed signs, NaN/±Infinity/±0 — equal the generic loop bit for bit`, () => {
      const rng = new Rng(p.x.reduce((a, b) => a * 11 + b, 5));
      const info = tf.backend_util.computePool2DInfo(p.x as [number, number, number, number], p.size, p.s, 1, p.pad);
      const attrs = { filterSize: p.size, strides: p.s, pad: p.pad };
      const n = p.x.reduce((a, b) => a * b, 1);
      const raw = () => randomTensor(rng, p.x).dataSync() as Float32Array;
      const specials = () => {
        const v = Float32Array.from(raw());
        SPECIAL.forEach((s, i) => (v[(i * 31) % n] = s));
        return v;
      };
      const relu = (v: Float32Array) => v.map((a) => (a > 0 ? a : 0));
      const quantised = () => relu(raw().map((a) => Math.round(a * 2) / 2)); // many equal values: ties
      const cases: [string, Float32Array, boolean][] = [
        ['after relu', relu(raw()), true],
        ['quantised, after relu', quantised(), true],
        ['all zero', new Float32Array(n), true],
        ['with +Infinity', relu(raw()).map((a, i) => (i % 13 === 0 ? Infinity : a)), true],
        ['mixed signs', raw(), false],
        ['with NaN, ±Infinity, ±0', specials(), false],
        ['relu with NaN', relu(raw()).map((a, i) => (i % 17 === 3 ? Number.NaN : a)), false],
        ['relu with −0', relu(raw()).map((a, i) => (i % 7 === 1 ? -0 : a)), false],
      ];
      for (const [what, xs, fast] of cases) {
        const ys = tf.tidy(() => tf.maxPool(tf.tensor4d(xs, p.x as [number, number, number, number]), p.size, p.s, p.pad).dataSync() as Float32Array);
        const dys = Float32Array.from(tf.tidy(() => randomTensor(rng, info.outShape).dataSync()));
        for (let i = 0; i < dys.length; i += 5) dys[i] = -0; // dy = −0 comes out as +0, as 0 + dy
        const want = new Float32Array(n);
        maxPoolGradGeneric(xs, dys, want, info);
        const scratch = new Float32Array(n).fill(7); // stale contents: every element must be written
        assert.equal(maxPoolGradDisjoint(xs, dys, scratch, info), fast, `${what}: the integer path ${fast ? 'holds' : 'bails out'}`);
        if (fast) tf.tidy(() => assertSameBits(tf.tensor(scratch), tf.tensor(want), `MaxPoolGrad (integer path) ${what}`));
        // dx may be a recycled output of the same length holding stale values: none may show
        tf.dispose(tf.relu(tf.fill(p.x, 7)));
        const got = tf.tidy(() => {
          const x = tf.tensor4d(xs, p.x as [number, number, number, number]);
          const y = tf.tensor(ys, info.outShape);
          const dy = tf.tensor(dys, info.outShape);
          return tf.engine().runKernel<tf.Tensor>('MaxPoolGrad', { dy, input: x, output: y }, attrs);
        });
        tf.tidy(() => assertSameBits(got, tf.tensor(want, p.x), `MaxPoolGrad ${what}`));
        if (xs.every(Number.isFinite)) assert.ok(relativeError(got.dataSync(), maxPoolGradRef(xs, dys, info)) < 1e-6, `MaxPoolGrad ${what} vs float64`);
        got.dispose();
      }
    });
  }

  const SLICES: [number[], number[], number[], number[], Partial<tf.StridedSliceAttrs>][] = [
    [[2, 9, 9, 3], [0, 1, 0, 0], [2, 9, 9, 3], [1, 2, 2, 1], {}], // a pool window tap
    [[3, 7, 8, 2], [0, 0, 1, 0], [3, 7, 8, 2], [1, 3, 2, 1], {}],
    [[2, 6, 5, 4], [1, 5, 4, 3], [0, 0, 0, 0], [-1, -2, -1, -2], { beginMask: 0, endMask: 0b1111 }],
    [[5, 7], [1, 0], [5, 7], [2, 3], { shrinkAxisMask: 0 }],
    [[4, 6, 3], [1, 0, 1], [3, 6, 3], [1, 2, 1], { shrinkAxisMask: 0b001 }],
    [[4, 6, 3], [0, 1, 0], [4, 6, 3], [2, 2, 1], { newAxisMask: 0b010 }],
    [[3, 4, 5, 6], [0, 1], [0, 4], [1, 3], { ellipsisMask: 0b01 }],
    [[6, 5], [0, 0], [6, 5], [1, 1], {}], // identity: upstream's path
    [[6, 5], [2, 0], [4, 5], [1, 1], {}], // contiguous: upstream's path
  ];
  for (const [shape, begin, end, strides, masks] of SLICES) {
    test(`StridedSlice of [${String(shape)}] begin [${String(begin)}] end [${String(end)}] strides [${String(strides)}] ${JSON.stringify(masks)} equals upstream`, () => {
      const rng = new Rng(shape.reduce((a, b) => a * 5 + b, 3));
      tf.tidy(() => {
        const x = withSpecials(rng, shape);
        const attrs = { begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0, ...masks };
        const mine = tf.engine().runKernel<tf.Tensor>('StridedSlice', { x }, attrs);
        assertSameBits(mine, own('StridedSlice', { x }, attrs), 'StridedSlice');
      });
    });
  }

  test('int32 inputs go to the backend\'s own kernels', () => {
    tf.tidy(() => {
      const x = tf.tensor1d([-2, 0, 3], 'int32');
      assert.deepEqual(Array.from(tf.relu(x).dataSync()), [0, 0, 3]);
      assert.deepEqual(Array.from(tf.square(x).dataSync()), [4, 0, 9]);
      assert.equal(tf.relu(x).dtype, 'int32');
      const p = tf.maxPool(tf.tensor4d([1, 5, 2, 4], [1, 2, 2, 1], 'int32'), 2, 2, 'valid');
      assert.deepEqual(Array.from(p.dataSync()), [5]);
      assert.deepEqual(Array.from(tf.stridedSlice(tf.tensor1d([1, 2, 3, 4, 5], 'int32'), [0], [5], [2]).dataSync()), [1, 3, 5]);
    });
  });
});

/**
 * The cpu Relu, Step, Square, MaxPool and StridedSlice kernels against tfjs-backend-cpu's own (run
 * directly on the same tensors): random inputs of odd sizes plus NaN, ±Infinity and ±0, which must
 * come out exactly as upstream's (bit for bit); pools after ReLU (the fast path), of mixed signs and
 * with NaNs (the generic path); strided slices with negative strides and every mask; other dtypes
 * fall back to the backend's own kernels.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { randomTensor } from '../testing/finite-diff.js';
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
  const cpu = tf.findBackend('cpu')!;
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
    test(`Relu, Step (alpha 0 and 0.3), Square of [${shape}] with NaN/±Infinity/±0 equal upstream bit for bit`, () => {
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
    test(`MaxPool x [${p.x}] ${p.size}/${p.s} ${p.pad}: after ReLU (ties at 0), mixed signs, NaNs — equal upstream bit for bit`, () => {
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
    test(`StridedSlice of [${shape}] begin [${begin}] end [${end}] strides [${strides}] ${JSON.stringify(masks)} equals upstream`, () => {
      const rng = new Rng(shape.reduce((a, b) => a * 5 + b, 3));
      tf.tidy(() => {
        const x = withSpecials(rng, shape);
        const attrs = { begin, end, strides, beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0, ...masks };
        const mine = tf.engine().runKernel('StridedSlice', { x }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
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

/**
 * The cpu Conv2D's Winograd F(2×2, 3×3) path (3×3, stride 1, ≥ 2 input channels) against a float64
 * reference and tfjs-backend-cpu's own Conv2D: odd and even sizes (partial output tiles), 'same',
 * 'valid' and explicit padding (including padding wider than the filter reaches), chunks of tiles
 * that do not fill a register block, several filters; plus which convolutions take the path.
 * The same cases for Conv2DBackpropFilter by Winograd F(3×3, 2×2) (./winograd-filter.ts), against a
 * float64 reference (channel and filter counts not multiples of 4, several chunks of tiles).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { randomTensor } from '@metaloop/testing/numerics';
import { convInfo } from './conv-util.js';
import { usesWinograd } from './conv2d.js';
import { conv2dBackpropFilterRef, conv2dRef, relativeError } from './reference.js';
import { registerTrainingKernels, upstreamKernel } from './register.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

const CASES: { x: [number, number, number, number]; f: number; pad: Pad }[] = [
  { x: [2, 7, 9, 4], f: 3, pad: 'same' },
  { x: [1, 8, 8, 5], f: 6, pad: 'same' },
  { x: [3, 9, 6, 4], f: 1, pad: 'valid' },
  { x: [2, 5, 5, 8], f: 7, pad: 'valid' },
  { x: [2, 6, 7, 4], f: 2, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { x: [1, 6, 5, 4], f: 3, pad: [[0, 0], [3, 2], [0, 4], [0, 0]] }, // padding past the filter's reach
  { x: [9, 3, 5, 6], f: 5, pad: 'same' }, // 54 tiles: a full chunk of 32, then 22 (a partial register block)
  { x: [1, 4, 6, 13], f: 5, pad: 'same' },
  { x: [2, 14, 14, 16], f: 9, pad: 'same' },
  { x: [1, 2, 2, 4], f: 4, pad: 'same' },
  { x: [2, 5, 6, 2], f: 3, pad: 'same' },
];

const label = (c: (typeof CASES)[number]) => `x [${String(c.x)}] ${c.f} filters ${typeof c.pad === 'string' ? c.pad : `explicit ${JSON.stringify(c.pad.slice(1, 3))}`}`;

describe('cpu Conv2D by Winograd F(2×2, 3×3)', () => {
  before(async () => {
    registerTrainingKernels();
    await tf.setBackend('cpu');
  });

  test('only 3×3 stride-1 undilated convolutions with at least 2 input channels take the path', () => {
    const info = (x: [number, number, number, number], f: [number, number, number, number], s: number, d = 1) => convInfo('t', x, f, { strides: s, pad: 'same', dilations: d });
    assert.ok(usesWinograd(info([1, 8, 8, 2], [3, 3, 2, 2], 1)));
    assert.ok(usesWinograd(info([1, 8, 8, 64], [3, 3, 64, 64], 1)));
    assert.ok(!usesWinograd(info([1, 8, 8, 1], [3, 3, 1, 64], 1)), 'one input channel: im2col + GEMM');
    assert.ok(!usesWinograd(info([1, 8, 8, 4], [3, 3, 4, 2], 2)), 'stride 2');
    assert.ok(!usesWinograd(info([1, 8, 8, 4], [3, 3, 4, 2], 1, 2)), 'dilation 2');
    assert.ok(!usesWinograd(info([1, 8, 8, 4], [2, 3, 4, 2], 1)), '2×3 filter');
  });

  for (const c of CASES) {
    test(`${label(c)}: vs float64 and tfjs-backend-cpu's own Conv2D (rel err < 1e-5)`, () => {
      const rng = new Rng(c.x.reduce((a, b) => a * 11 + b, c.f));
      const info = convInfo('t', c.x, [3, 3, c.x[3], c.f], { strides: 1, pad: c.pad });
      assert.ok(usesWinograd(info));
      tf.tidy(() => {
        const x = randomTensor(rng, c.x) as tf.Tensor4D;
        const w = randomTensor(rng, [3, 3, c.x[3], c.f]) as tf.Tensor4D;
        const y = tf.conv2d(x, w, 1, c.pad);
        assert.deepEqual(y.shape, info.outShape);
        const e = relativeError(y.dataSync(), conv2dRef(x.dataSync(), w.dataSync(), info));
        assert.ok(e < 1e-6, `vs float64: rel err ${e}`);
        const cpu = tf.findBackend('cpu');
        const attrs = { strides: 1, pad: c.pad, dataFormat: 'NHWC', dilations: 1 };
        const own = tf.engine().makeTensorFromTensorInfo(upstreamKernel('Conv2D', 'cpu')!.kernelFunc({ inputs: { x, filter: w }, backend: cpu, attrs: attrs }) as tf.TensorInfo, cpu);
        const e2 = relativeError(y.dataSync(), own.dataSync());
        assert.ok(e2 < 1e-5, `vs tfjs-backend-cpu: rel err ${e2}`);
      });
    });
  }

  for (const c of CASES) {
    test(`Conv2DBackpropFilter ${label(c)}: vs float64 (rel err < 1e-6)`, () => {
      const rng = new Rng(c.x.reduce((a, b) => a * 13 + b, c.f));
      const info = convInfo('t', c.x, [3, 3, c.x[3], c.f], { strides: 1, pad: c.pad });
      assert.ok(usesWinograd(info));
      tf.tidy(() => {
        const x = randomTensor(rng, c.x) as tf.Tensor4D;
        const dy = randomTensor(rng, info.outShape) as tf.Tensor4D;
        const dw = tf.engine().runKernel<tf.Tensor>('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: c.pad, dataFormat: 'NHWC', filterShape: [3, 3, c.x[3], c.f] });
        assert.deepEqual(dw.shape, [3, 3, c.x[3], c.f]);
        const e = relativeError(dw.dataSync(), conv2dBackpropFilterRef(x.dataSync(), dy.dataSync(), info));
        assert.ok(e < 1e-6, `vs float64: rel err ${e}`);
      });
    });
  }
});

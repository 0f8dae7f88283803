/**
 * Training kernels on cpu and wasm (tensorflow instead under METALOOP_TEST_BACKEND=tensorflow) against float64 references and tfjs-backend-cpu's own kernels:
 * random inputs, odd sizes, strides 1 and 2, same/valid/explicit padding, batch and channels > 1.
 * Then: first and second derivatives through conv and pool layers are unchanged by the kernels.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
import { wasmDirectory } from '../backend.js';
import { registerSecondOrderGradients } from '../gradients/register.js';
import { randomTensor } from '@metaloop/testing/numerics';
import { initTestBackend, sideBySideBackends } from '../testing/backend.js';
import { convInfo } from './conv-util.js';
import { conv2dBackpropFilterSimd, simdFilterGradShape, wasmFilterGradStatus } from './conv-filter-grad-simd.js';
import { conv2dBackpropFilterViaGemm } from './conv2d-backprop-filter.js';
import { ioFor } from './io.js';
import { wasmPoolGradStatus } from './pool-grad-simd.js';
import {
  avgPoolGradRef,
  conv2dBackpropFilterRef,
  conv2dBackpropInputRef,
  conv2dRef,
  maxPoolGradRef,
  relativeError,
} from './reference.js';
import { registerTrainingKernels, restoreUpstreamKernels, TRAINING_KERNELS, trainingKernelsRegistered, upstreamKernel } from './register.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: number | [number, number];
  pad: Pad;
}

const CONV_CASES: ConvCase[] = [
  { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, pad: 'same' },
  { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 2, pad: 'same' },
  { x: [3, 8, 6, 2], f: [3, 3, 2, 5], s: 2, pad: 'same' },
  { x: [2, 8, 7, 3], f: [3, 2, 3, 2], s: 2, pad: 'valid' },
  { x: [2, 9, 9, 4], f: [3, 3, 4, 3], s: 1, pad: 'valid' },
  { x: [1, 10, 11, 2], f: [2, 3, 2, 3], s: [2, 1], pad: 'same' },
  { x: [2, 6, 7, 3], f: [3, 3, 3, 2], s: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { x: [4, 5, 5, 1], f: [3, 3, 1, 6], s: 2, pad: 'same' },
  // padding wider than the filter reaches: strided backprop-input phases crop dy
  { x: [2, 7, 6, 2], f: [3, 3, 2, 3], s: 2, pad: [[0, 0], [3, 2], [3, 3], [0, 0]] },
  { x: [1, 9, 8, 2], f: [2, 3, 2, 2], s: [3, 2], pad: [[0, 0], [1, 0], [1, 1], [0, 0]] },
  // wasm Conv2DBackpropFilter: fewer filter taps × channels than filters, F % 4 = 0: the SIMD
  // kernel (conv-filter-grad.wat) — 8-filter blocks and a last 4, C = 1 and 3, padded and not
  // ('valid' with rows and columns no tap reads), FW·C not a multiple of 3 (a dummy third tap),
  // several bands of rows (> 256 KB of dy per image)
  { x: [3, 9, 7, 1], f: [3, 3, 1, 12], s: 1, pad: 'same' },
  { x: [3, 9, 7, 1], f: [3, 3, 1, 16], s: 2, pad: 'same' },
  // cpu Conv2DBackpropFilter of a first layer (conv-filter-grad-1ch.ts: one channel, stride 1, FW = 3,
  // F % 4 = 0): 'valid', 2 filter rows, explicit uneven padding
  { x: [2, 8, 9, 1], f: [2, 3, 1, 8], s: 1, pad: 'valid' },
  { x: [3, 7, 6, 1], f: [3, 3, 1, 4], s: 1, pad: [[0, 0], [2, 0], [0, 2], [0, 0]] },
  { x: [2, 11, 9, 3], f: [3, 3, 3, 28], s: 1, pad: 'same' },
  { x: [2, 10, 13, 3], f: [3, 3, 3, 32], s: 2, pad: 'valid' },
  { x: [2, 7, 8, 1], f: [2, 2, 1, 8], s: 1, pad: 'same' },
  { x: [2, 7, 6, 1], f: [3, 2, 1, 12], s: [2, 1], pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { x: [2, 65, 63, 1], f: [3, 3, 1, 36], s: 1, pad: 'same' },
  // … F % 4 ≠ 0: dyᵀ·cols on the GEMM
  { x: [2, 9, 8, 1], f: [3, 3, 1, 10], s: 2, pad: 'valid' },
  // … and several image chunks (> 2048 output pixels), x larger than OH·s × OW·s ('valid')
  { x: [5, 24, 24, 2], f: [3, 3, 2, 4], s: 1, pad: 'same' },
  { x: [9, 27, 26, 2], f: [3, 3, 2, 3], s: 1, pad: 'valid' },
  { x: [7, 37, 35, 2], f: [3, 3, 2, 3], s: 2, pad: 'valid' },
  // cpu Conv2DBackpropInput with K = fH·fW·C < filters (dyTimesWt): the cases above with K < F,
  // and a last panel of 2 columns (K = 5, 8), rows M mod 4 ≠ 0
  { x: [3, 7, 9, 1], f: [1, 5, 1, 8], s: 1, pad: 'same' },
  { x: [2, 6, 7, 2], f: [2, 2, 2, 12], s: 2, pad: 'valid' },
];

type PoolPad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface PoolCase {
  x: [number, number, number, number];
  size: number | [number, number];
  s: number | [number, number];
  pad: PoolPad;
  /** x = relu(round(2·r)) / 2: small integers, so windows tie between equal positive values too. */
  quantised?: boolean;
}

const POOL_CASES: PoolCase[] = [
  { x: [2, 7, 9, 3], size: 2, s: 2, pad: 'valid' },
  { x: [2, 8, 6, 4], size: 2, s: 2, pad: 'valid' },
  { x: [3, 7, 7, 2], size: 3, s: 2, pad: 'same' },
  { x: [2, 6, 5, 3], size: 3, s: 1, pad: 'same' },
  // channels a multiple of 4: the SIMD path on wasm (2×2 fast path, generic windows, overlap)
  { x: [2, 7, 9, 4], size: 2, s: 2, pad: 'valid', quantised: true }, // last row and column in no window
  { x: [2, 7, 9, 8], size: 2, s: 2, pad: 'same', quantised: true }, // partial windows at the far edge
  { x: [3, 7, 7, 4], size: 3, s: 2, pad: 'same' }, // overlapping: zero, then add
  { x: [2, 6, 5, 8], size: 3, s: 1, pad: 'same', quantised: true },
  { x: [2, 8, 7, 4], size: 2, s: 1, pad: 'valid', quantised: true }, // overlapping whole 2×2 windows
  { x: [1, 9, 10, 4], size: 3, s: 3, pad: 'valid' }, // 3×3 windows stored once, column 9 uncovered
  { x: [2, 9, 9, 4], size: 2, s: 3, pad: 'valid', quantised: true }, // stride > filter: gaps between windows
  { x: [2, 7, 6, 12], size: [2, 3], s: [2, 3], pad: [[0, 0], [1, 0], [0, 1], [0, 0]] }, // explicit padding before and after
  { x: [2, 8, 8, 4], size: 2, s: 3, pad: [[0, 0], [1, 1], [2, 0], [0, 0]], quantised: true }, // padding and gaps: rows 1, 4, 7 and columns 0, 3, 6, 7 uncovered
];

const poolLabel = (p: PoolCase) => `x [${String(p.x)}] ${String(p.size)}/${String(p.s)} ${typeof p.pad === 'string' ? p.pad : 'explicit'}${p.quantised ? ', quantised' : ''}`;

/** cpu and wasm (the project's kernels); only tensorflow under METALOOP_TEST_BACKEND=tensorflow (tfjs-node's own). */
const BACKENDS = sideBySideBackends();
const TOL = 1e-5;

const label = (c: ConvCase) => `x [${String(c.x)}] f [${String(c.f)}] s ${String(c.s)} ${typeof c.pad === 'string' ? c.pad : 'explicit'}`;

function data(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

describe('training kernels', () => {
  before(async () => {
    // As in the worker: kernels registered first, backends initialised afterwards.
    registerSecondOrderGradients();
    registerTrainingKernels();
    setWasmPaths(wasmDirectory());
    await tf.setBackend('wasm');
    if (BACKENDS.includes('tensorflow')) await initTestBackend('tensorflow');
    await tf.setBackend('cpu');
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  test('registerTrainingKernels is idempotent and restores a replaced config', () => {
    assert.deepEqual(registerTrainingKernels(), []);
    assert.ok(trainingKernelsRegistered());
    const first = TRAINING_KERNELS[0]!;
    tf.unregisterKernel(first.kernelName, first.backendName);
    tf.registerKernel({ ...first });
    assert.ok(!trainingKernelsRegistered());
    assert.deepEqual(registerTrainingKernels(), [`${first.backendName}/${first.kernelName}`]);
    assert.ok(trainingKernelsRegistered());
    assert.equal(upstreamKernel('Conv2DBackpropFilter', 'wasm'), undefined, 'wasm has no Conv2DBackpropFilter of its own');
    assert.ok(upstreamKernel('Conv2DBackpropFilter', 'cpu'));
  });

  for (const backend of BACKENDS) {
    for (const c of CONV_CASES) {
      test(`${backend}: Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput vs float64 (${label(c)})`, async (t) => {
        if (backend === 'tensorflow' && typeof c.pad !== 'string') {
          // tfjs-node's conv kernels throw on explicit padding; the worker's models use 'same' only.
          t.skip("tfjs-node supports only 'same'/'valid' conv padding");
          return;
        }
        await tf.setBackend(backend);
        const rng = new Rng(c.x.reduce((a, b) => a * 7 + b, 1));
        tf.tidy(() => {
          const x = randomTensor(rng, c.x) as tf.Tensor4D;
          const w = randomTensor(rng, c.f) as tf.Tensor4D;
          const info = convInfo('test', c.x, c.f, { strides: c.s, pad: c.pad });
          const dy = randomTensor(rng, info.outShape) as tf.Tensor4D;
          const y = tf.conv2d(x, w, c.s, c.pad);
          assert.ok(relativeError(data(y), conv2dRef(data(x), data(w), info)) < TOL, 'Conv2D');
          const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: c.f });
          const e1 = relativeError(data(dw as tf.Tensor), conv2dBackpropFilterRef(data(x), data(dy), info));
          assert.ok(e1 < TOL, `Conv2DBackpropFilter rel err ${e1}`);
          assert.deepEqual((dw as tf.Tensor).shape, c.f);
          const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { strides: c.s, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x });
          const e2 = relativeError(data(dx as tf.Tensor), conv2dBackpropInputRef(data(dy), data(w), info));
          assert.ok(e2 < TOL, `Conv2DBackpropInput rel err ${e2}`);
          assert.deepEqual((dx as tf.Tensor).shape, c.x);
        });
      });
    }

    for (const p of POOL_CASES) {
      test(`${backend}: MaxPoolGrad, AvgPoolGrad vs float64 and tfjs-backend-cpu (${poolLabel(p)}, ties after relu)`, async (t) => {
        if (backend === 'tensorflow' && typeof p.pad !== 'string') {
          t.skip("tfjs-node supports only 'same'/'valid' pool padding");
          return;
        }
        await tf.setBackend(backend);
        const rng = new Rng(p.x.reduce((a, b) => a * 5 + b, 2));
        // many exact zeros (and, quantised, equal positive values): ties
        const x = tf.tidy(() => {
          const r = randomTensor(rng, [...p.x]);
          return (p.quantised ? tf.div(tf.relu(tf.round(tf.mul(r, 2))), 2) : tf.relu(r)) as tf.Tensor4D;
        });
        const info = tf.backend_util.computePool2DInfo([...p.x], p.size, p.s, 1, p.pad);
        const y = tf.maxPool(x, p.size, p.s, p.pad);
        const dy = randomTensor(rng, y.shape);
        const attrs = { filterSize: p.size, strides: p.s, pad: p.pad };
        const mine = tf.engine().runKernel<tf.Tensor>('MaxPoolGrad', { dy, input: x, output: y }, attrs);
        const avg = tf.engine().runKernel<tf.Tensor>('AvgPoolGrad', { dy, input: x }, attrs);
        const xs = data(x);
        const dys = data(dy);
        assert.ok(relativeError(data(mine), maxPoolGradRef(xs, dys, info)) < TOL, 'MaxPoolGrad');
        // TensorFlow's AvgPoolGrad divides by the in-bounds count (right for its forward pass); the
        // tfjs cpu/wasm kernels, and ours, by the full window (gradients/avg-pool.ts rescales dy).
        const divisor = backend === 'tensorflow' ? 'in-bounds' : 'full-window';
        assert.ok(relativeError(data(avg), avgPoolGradRef(xs.length, dys, info, divisor)) < TOL, `AvgPoolGrad (${divisor})`);
        // tfjs-backend-cpu's own kernels, run directly on the cpu backend's copies
        const cpu = tf.findBackend('cpu');
        const own = (name: string, inputs: tf.NamedTensorInfoMap) =>
          tf.engine().makeTensorFromTensorInfo(upstreamKernel(name, 'cpu')!.kernelFunc({ inputs, backend: cpu, attrs }) as tf.TensorInfo, cpu);
        await tf.setBackend('cpu');
        const [xc, yc, dyc] = [tf.tensor(xs, x.shape), tf.tensor(data(y), y.shape), tf.tensor(dys, dy.shape)];
        const ownMax = own('MaxPoolGrad', { dy: dyc, input: xc, output: yc });
        const ownAvg = own('AvgPoolGrad', { dy: dyc, input: xc });
        assert.ok(relativeError(data(mine), data(ownMax)) < TOL, 'MaxPoolGrad vs tfjs-backend-cpu (same tie-breaking)');
        if (divisor === 'full-window' || p.pad === 'valid') assert.ok(relativeError(data(avg), data(ownAvg)) < TOL, 'AvgPoolGrad vs tfjs-backend-cpu');
        tf.dispose([x, y, dy, mine, avg, xc, yc, dyc, ownMax, ownAvg]);
      });
    }
  }

  if (BACKENDS.includes('wasm')) {
    test('wasm: pool gradients run as SIMD wasm on the backend heap', async () => {
      await tf.setBackend('wasm');
      assert.equal(wasmPoolGradStatus(tf.backend()), 'simd');
    });

    test('wasm: SIMD pool gradients with NaN, -Infinity and all -Infinity windows, on a reused dirty heap block', async () => {
      await tf.setBackend('wasm');
      const rng = new Rng(77);
      for (const p of [
        { x: [2, 6, 7, 8], size: 2, s: 2, pad: 'valid' }, // 2×2 fast path, column 6 uncovered
        { x: [2, 5, 5, 4], size: 2, s: 2, pad: 'same' }, // partial windows
        { x: [1, 6, 6, 4], size: 3, s: 2, pad: 'same' }, // overlapping
        { x: [1, 7, 7, 4], size: 2, s: 3, pad: 'valid' }, // gaps
      ] as const) {
        const [N, H, W, C] = p.x;
        const v = randomTensor(rng, [...p.x]).dataSync() as Float32Array;
        for (let i = 0; i < v.length; i++) if (i % 11 === 0) v[i] = Number.NaN;
        // image 0, pixels (0..1, 0..1): every channel -inf or NaN, so that window has no maximum
        for (const [h, w] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const)
          for (let c = 0; c < C; c++) v[(h * W + w) * C + c] = c % 2 ? Number.NEGATIVE_INFINITY : Number.NaN;
        if (N > 1) v[((1 * H + 2) * W + 2) * C] = Number.NEGATIVE_INFINITY;
        const info = tf.backend_util.computePool2DInfo([...p.x], p.size, p.s, 1, p.pad);
        const x = tf.tensor4d(v, [...p.x]);
        const y = tf.maxPool(x, p.size, p.s, p.pad);
        const dy = randomTensor(rng, y.shape);
        const attrs = { filterSize: p.size, strides: p.s, pad: p.pad };
        const run = (name: string, inputs: tf.NamedTensorMap) => {
          tf.dispose(tf.fill(x.shape, 7)); // dx is allocated where this was: stale values must not show
          return tf.engine().runKernel<tf.Tensor>(name, inputs, attrs);
        };
        const mine = run('MaxPoolGrad', { dy, input: x, output: y });
        const avg = run('AvgPoolGrad', { dy, input: x });
        const got = data(mine);
        assert.ok(got.every(Number.isFinite), `${String(p.x)} ${p.size}/${p.s}: MaxPoolGrad finite`);
        const e = relativeError(got, maxPoolGradRef(v, data(dy), info));
        assert.ok(e < TOL, `${String(p.x)} ${p.size}/${p.s} ${p.pad}: MaxPoolGrad rel err ${e}`);
        for (let c = 0; c < C; c++) assert.equal(got[c], 0, 'a window without a maximum drops its dy');
        const ea = relativeError(data(avg), avgPoolGradRef(v.length, data(dy), info));
        assert.ok(ea < TOL, `${String(p.x)} ${p.size}/${p.s} ${p.pad}: AvgPoolGrad rel err ${ea}`);
        tf.dispose([x, y, dy, mine, avg]);
      }
    });
  }

  if (BACKENDS.includes('wasm')) {
    test('wasm: Conv2DBackpropFilter of a first layer runs as SIMD wasm on the backend heap (Conv4 block 1 geometry)', async () => {
      await tf.setBackend('wasm');
      const backend = tf.backend();
      assert.equal(wasmFilterGradStatus(backend), 'simd');
      const geometry = (x: number[], f: number[], s: number) => convInfo('t', x, f, { strides: s, pad: 'same' });
      assert.ok(simdFilterGradShape(geometry([80, 28, 28, 1], [3, 3, 1, 64], 1)), 'Conv4 block 1');
      assert.ok(!simdFilterGradShape(geometry([80, 14, 14, 64], [3, 3, 64, 64], 1)), 'Conv4 block 2 stays on the GEMM');
      assert.ok(!simdFilterGradShape(geometry([4, 9, 9, 1], [3, 3, 1, 10], 1)), 'F % 4 != 0 stays on the GEMM');
      const rng = new Rng(31);
      const c = geometry([6, 28, 28, 1], [3, 3, 1, 64], 1);
      const x = randomTensor(rng, [6, 28, 28, 1]);
      const dy = randomTensor(rng, c.outShape);
      tf.dispose(tf.fill([3, 3, 1, 64], 7)); // dW is allocated where this was: the kernel overwrites it
      const dw = tf.engine().runKernel<tf.Tensor>('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 1, 64] });
      const io = ioFor('wasm', backend);
      const simd = conv2dBackpropFilterSimd(io, backend, x, dy, c);
      const gemm = conv2dBackpropFilterViaGemm(io, x, dy, c, 'dyT·cols');
      assert.ok(simd !== undefined);
      const [got, bySimd, byGemm] = [data(dw), io.view(simd).slice(), io.view(gemm).slice()];
      assert.ok(relativeError(got, conv2dBackpropFilterRef(data(x), data(dy), c)) < TOL);
      assert.deepEqual(got, bySimd, 'the registered kernel returned what the SIMD kernel computes, bit for bit');
      assert.notDeepEqual(got, byGemm, '… which the GEMM path does not (other rounding), so the check above tells them apart');
      io.dispose(simd);
      io.dispose(gemm);
      tf.dispose([x, dy, dw]);
    });

    test('wasm: SIMD Conv2DBackpropFilter with dilations (2, 2) and (2, 1), stride 2, vs float64', async () => {
      await tf.setBackend('wasm');
      const rng = new Rng(32);
      const cases: [number[], number[], number, number | [number, number], 'same' | 'valid'][] = [
        [[2, 13, 11, 1], [3, 3, 1, 20], 1, 2, 'same'],
        [[3, 12, 13, 3], [3, 3, 3, 32], 1, [2, 1], 'valid'],
        [[2, 15, 14, 2], [2, 3, 2, 24], 2, 1, 'same'],
      ];
      for (const [xs, fs, s, d, pad] of cases) {
        const c = convInfo('t', xs, fs, { strides: s, pad, dilations: d });
        assert.ok(simdFilterGradShape(c));
        const x = randomTensor(rng, xs);
        const dy = randomTensor(rng, c.outShape);
        const dw = tf.engine().runKernel<tf.Tensor>('Conv2DBackpropFilter', { x, dy }, { strides: s, pad, dataFormat: 'NHWC', filterShape: fs, dilations: d });
        const e = relativeError(data(dw), conv2dBackpropFilterRef(data(x), data(dy), c));
        assert.ok(e < TOL, `x [${String(xs)}] f [${String(fs)}] s ${s} d ${String(d)} ${pad}: rel err ${e}`);
        tf.dispose([x, dy, dw]);
      }
    });
  }

  test('cpu: the kernels agree with tfjs-backend-cpu\'s own on a Conv4-like layer (stride 1 and 2)', async () => {
    await tf.setBackend('cpu');
    const cpu = tf.findBackend('cpu');
    const rng = new Rng(9);
    for (const s of [1, 2]) {
      tf.tidy(() => {
        const x = randomTensor(rng, [3, 11, 11, 8]);
        const w = randomTensor(rng, [3, 3, 8, 8]);
        const dy = randomTensor(rng, tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, 'same').shape);
        const attrs = { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 8, 8], inputShape: [3, 11, 11, 8], dilations: 1 };
        for (const [name, inputs] of [
          ['Conv2DBackpropFilter', { x, dy }],
          ['Conv2DBackpropInput', { dy, filter: w }],
          ['Conv2D', { x, filter: w }],
        ] as const) {
          const mine = tf.engine().runKernel<tf.Tensor>(name, inputs, attrs);
          const own = tf.engine().makeTensorFromTensorInfo(upstreamKernel(name, 'cpu')!.kernelFunc({ inputs, backend: cpu, attrs }) as tf.TensorInfo, cpu);
          const e = relativeError(data(mine), data(own));
          assert.ok(e < TOL, `${name} stride ${s}: rel err ${e}`);
        }
      });
    }
  });

  /** Loss of a small conv net (conv s=2 → relu → conv → maxPool) and its gradient's directional derivative. */
  function secondOrder(): number[] {
    const rng = new Rng(21);
    return tf.tidy(() => {
      const x = randomTensor(rng, [2, 9, 9, 2]);
      const w1 = randomTensor(rng, [3, 3, 2, 3]);
      const w2 = randomTensor(rng, [3, 3, 3, 2]);
      const u1 = randomTensor(rng, w1.shape);
      const u2 = randomTensor(rng, w2.shape);
      const loss = (a: tf.Tensor, b: tf.Tensor) => {
        const h = tf.relu(tf.conv2d(x as tf.Tensor4D, a as tf.Tensor4D, 2, 'same'));
        const g = tf.maxPool(tf.conv2d(h, b as tf.Tensor4D, 1, 'same'), 2, 2, 'valid');
        const avg = tf.avgPool(tf.conv2d(h, b as tf.Tensor4D, 1, 'valid'), 2, 1, 'valid');
        return tf.add<tf.Scalar>(tf.sum(tf.square(g)), tf.sum(tf.square(avg)));
      };
      // d/dθ of (∇loss · u): second order through Conv2DBackpropFilter/Input, MaxPoolGrad, AvgPoolGrad
      const gu = (a: tf.Tensor, b: tf.Tensor) => {
        const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => loss(p, q))([a, b]);
        return tf.add<tf.Scalar>(tf.sum(tf.mul(ga!, u1)), tf.sum(tf.mul(gb!, u2)));
      };
      const [ha, hb] = tf.grads(gu)([w1, w2]);
      return [...data(ha!), ...data(hb!)];
    });
  }

  test(`second derivatives through the kernels equal those through the upstream cpu kernels (cpu, wasm${BACKENDS.includes('tensorflow') ? ', tensorflow' : ''})`, async () => {
    await tf.setBackend('cpu');
    const mineCpu = secondOrder();
    await tf.setBackend('wasm');
    const mineWasm = secondOrder();
    let native: number[] | undefined;
    if (BACKENDS.includes('tensorflow')) {
      await tf.setBackend('tensorflow');
      native = secondOrder(); // tfjs-node's own kernels under the registered gradients
    }
    restoreUpstreamKernels();
    try {
      await tf.setBackend('cpu');
      const ref = secondOrder();
      assert.ok(ref.some((v) => v !== 0));
      assert.ok(relativeError(mineCpu, ref) < 1e-4, `cpu ${relativeError(mineCpu, ref)}`);
      assert.ok(relativeError(mineWasm, ref) < 1e-4, `wasm ${relativeError(mineWasm, ref)}`);
      if (native) assert.ok(relativeError(native, ref) < 1e-4, `tensorflow ${relativeError(native, ref)}`);
    } finally {
      registerTrainingKernels();
    }
  });

  test(`no tensors leak from the kernels (${BACKENDS.join(', ')})`, async () => {
    for (const backend of BACKENDS) {
      await tf.setBackend(backend);
      const rng = new Rng(4);
      const x = randomTensor(rng, [2, 8, 8, 3]) as tf.Tensor4D;
      const w = randomTensor(rng, [3, 3, 3, 4]) as tf.Tensor4D;
      const f = () => tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), 2, 2, 'valid')))([x, w]).map((t) => t.dataSync()));
      f();
      const before = tf.memory().numTensors;
      const bytes = (tf.backend() as unknown as { dataIdMap?: { numDataIds?: () => number } }).dataIdMap?.numDataIds?.();
      f();
      assert.equal(tf.memory().numTensors, before);
      if (bytes !== undefined) assert.equal((tf.backend() as unknown as { dataIdMap: { numDataIds: () => number } }).dataIdMap.numDataIds(), bytes, `${backend}: backend buffers leaked`);
      tf.dispose([x, w]);
    }
  });
});

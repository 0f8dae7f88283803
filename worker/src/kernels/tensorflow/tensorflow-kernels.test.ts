/**
 * The worker's tensorflow-backend kernels (kernels/tensorflow): registered on tfjs-node (CPU), used
 * by the ops and gradients that should use them, bitwise equal to what they replace where they
 * claim to be (Reshape, Sum, Mean, Max, Cast, ReluGrad, the max-pool mask gradient), close to the
 * composite where they are not (the fused batch norm, whose derivatives the finite-difference
 * cases of gradients/register.test.ts and models/conv4.test.ts check), and leak-free (tfjs tensors
 * and TensorFlow handles). On another backend: none of it is registered and the composites run.
 * Runs on tensorflow under METALOOP_TEST_BACKEND=tensorflow (scripts/test-backends.mjs).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, Rng, validateSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { randomTensor } from '@metaloop/testing/numerics';
import { computeShard } from '../../engine.js';
import { gatherAtArgmax } from '../../gradients/max-pool-grad.js';
import { registerSecondOrderGradients } from '../../gradients/register.js';
import { batchNormComposite, batchNormTraining } from '../../ops/batch-norm.js';
import { useTestBackend } from '../../testing/backend.js';
import { replacedKernel } from '../replaced-kernels.js';
import { BATCH_NORM, BATCH_NORM_GRAD, BATCH_NORM_GRAD_GRAD, batchNormGradGradTensorflowConfig } from './batch-norm.js';
import { MAX_POOL_GATHER_MASK, MAX_POOL_GRAD_MASK } from './max-pool-mask.js';
import { registerTensorflowKernels, restoreTensorflowKernels, TENSORFLOW_KERNELS, tensorflowKernelsRegistered } from './register.js';
import { LEAKY_RELU_GRAD } from './leaky-relu-grad.js';
import { RELU_GRAD } from './relu-grad.js';
import { SGD_STEP, SGD_STEP_GRAD } from './sgd-step.js';

const rng = new Rng(20261207);

/** Bitwise equality of two float32/int32 tensors (NaN-free); +0 and −0 count as equal. */
function assertBitwise(a: tf.Tensor, b: tf.Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shapes`);
  assert.equal(a.dtype, b.dtype, `${what}: dtypes`);
  const x = a.dataSync();
  const y = b.dataSync();
  let bad = 0;
  let first = -1;
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) {
      bad++;
      if (first < 0) first = i;
    }
  }
  assert.equal(bad, 0, `${what}: ${bad} of ${x.length} elements differ (first at ${first}: ${x[first]} vs ${y[first]})`);
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let scale = 0;
  let d = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]!));
    d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d / Math.max(scale, 1e-30);
}

/** tfjs-node's own kernel (the one replaced), run directly. */
function upstream(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor {
  const k = replacedKernel(name, 'tensorflow');
  assert.ok(k, `tfjs-node has its own ${name}`);
  const out = k.kernelFunc({ inputs, backend: tf.backend(), attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
  return tf.engine().makeTensorFromTensorInfo(out);
}

/** Kernel names run by f (tf.profile), with counts. */
async function kernelsOf(f: () => void): Promise<Map<string, number>> {
  const info = await tf.profile(() => tf.tidy(f));
  const m = new Map<string, number>();
  for (const k of info.kernels) m.set(k.name, (m.get(k.name) ?? 0) + 1);
  return m;
}

/** relu of uniform values (windows of zeros tie), some pixels copied to their right neighbour (positive ties). */
function poolInput(shape: [number, number, number, number]): tf.Tensor4D {
  const x = tf.relu(randomTensor(rng, shape)).dataSync() as Float32Array;
  const [, , w, c] = shape;
  for (let i = 0; i + c < x.length; i += 5) {
    const col = Math.floor(i / c) % w;
    if (col + 1 < w) x[i + c] = x[i]!;
  }
  return tf.tensor4d(x, shape);
}

describe('tensorflow kernels', () => {
  let backend = '';
  before(async () => {
    backend = await useTestBackend();
    registerSecondOrderGradients();
  });

  test('other backends: nothing registered for them, the composites run', async (t) => {
    if (backend === 'tensorflow') return t.skip('covered by the tensorflow tests below (this checks the other backends)');
    for (const k of [BATCH_NORM, BATCH_NORM_GRAD, BATCH_NORM_GRAD_GRAD, RELU_GRAD, LEAKY_RELU_GRAD, MAX_POOL_GRAD_MASK, MAX_POOL_GATHER_MASK]) assert.equal(tf.getKernel(k, backend), undefined, k);
    tf.tidy(() => {
      const x = randomTensor(rng, [4, 3, 3, 5]);
      const s = randomTensor(rng, [5]);
      const o = randomTensor(rng, [5]);
      assertBitwise(batchNormTraining(x, s, o, 1e-5), batchNormComposite(x, s, o, 1e-5), 'batch norm = composite');
    });
    const used = await kernelsOf(() => tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(tf.relu(x) as tf.Tensor4D, 2, 2, 'valid')))(randomTensor(rng, [1, 4, 4, 2])));
    assert.ok(used.has('MaxPoolGrad') && used.has('Step'), `upstream relu/pool gradients: ${[...used.keys()].join(', ')}`);
  });

  describe('on tensorflow', () => {
    const onTf = (name: string, fn: () => void | Promise<void>) =>
      void test(name, async (t) => {
        if (backend !== 'tensorflow') return t.skip(`METALOOP_TEST_BACKEND=${backend}: these are the tensorflow backend's kernels`);
        await fn();
      });

    onTf('registered once tfjs-node is up, idempotent, restorable', () => {
      assert.ok(tensorflowKernelsRegistered());
      assert.deepEqual(registerTensorflowKernels(), []);
      restoreTensorflowKernels();
      assert.ok(!tensorflowKernelsRegistered());
      assert.equal(tf.getKernel(BATCH_NORM, 'tensorflow'), undefined);
      assert.ok(tf.getKernel('Reshape', 'tensorflow'), "tfjs-node's Reshape is back");
      assert.deepEqual(registerTensorflowKernels().sort(), TENSORFLOW_KERNELS.map((k) => k.kernelName).sort());
    });

    onTf('Reshape, Sum, Mean, Max, Cast: bitwise tfjs-node', () => {
      tf.tidy(() => {
        const x = randomTensor(rng, [3, 4, 5, 6], -3, 3);
        const xi = tf.cast(tf.mul(x, 10), 'int32');
        assertBitwise(tf.reshape(x, [12, -1]), upstream('Reshape', { x }, { shape: [12, -1] }), 'Reshape');
        assertBitwise(tf.reshape(xi, [6, 60]), upstream('Reshape', { x: xi }, { shape: [6, 60] }), 'Reshape int32');
        for (const [axis, keepDims] of [[[0, 1, 2], false], [[0, 1, 2], true], [3, false], [[1, 3], true], [null, false]] as const) {
          const a = { axis, keepDims } as unknown as tf.NamedAttrMap;
          assertBitwise(tf.engine().runKernel<tf.Tensor>('Sum', { x }, a), upstream('Sum', { x }, a), `Sum ${JSON.stringify(a)}`);
          assertBitwise(tf.engine().runKernel<tf.Tensor>('Mean', { x }, a), upstream('Mean', { x }, a), `Mean ${JSON.stringify(a)}`);
          assertBitwise(tf.engine().runKernel<tf.Tensor>('Sum', { x: xi }, a), upstream('Sum', { x: xi }, a), `Sum int32 ${JSON.stringify(a)}`);
          const m = { reductionIndices: axis, keepDims } as unknown as tf.NamedAttrMap;
          assertBitwise(tf.engine().runKernel<tf.Tensor>('Max', { x }, m), upstream('Max', { x }, m), `Max ${JSON.stringify(m)}`);
        }
        assertBitwise(tf.mean(xi, 1), upstream('Mean', { x: xi }, { axis: 1, keepDims: false }), 'Mean int32 (tfjs-node casts)');
        assertBitwise(tf.cast(x, 'float32'), x, 'Cast to its own dtype');
        assertBitwise(tf.cast(x, 'int32'), upstream('Cast', { x }, { dtype: 'int32' }), 'Cast float32 → int32');
      });
    });

    onTf('ReluGrad: bitwise mul(dy, cast(step(x))), exact zeros included', () => {
      tf.tidy(() => {
        const x = tf.relu(randomTensor(rng, [2, 5, 5, 3])).sub(0.2); // many x ≤ 0, some exactly −0.2
        const xz = tf.where(tf.less(tf.abs(x), 0.1), tf.zerosLike(x), x); // and exact zeros
        const dy = randomTensor(rng, xz.shape);
        assertBitwise(tf.engine().runKernel<tf.Tensor>(RELU_GRAD, { dy }, { x: xz } as unknown as tf.NamedAttrMap), tf.mul(dy, tf.cast(tf.step(xz), 'float32')), 'ReluGrad');
      });
    });

    onTf('LeakyReluGrad: bitwise where(greater(x, 0), dy, mul(dy, α)), exact zeros and both signs included', () => {
      tf.tidy(() => {
        const x = tf.relu(randomTensor(rng, [2, 5, 5, 3])).sub(0.2);
        const xz = tf.where(tf.less(tf.abs(x), 0.1), tf.zerosLike(x), x);
        const dy = randomTensor(rng, xz.shape);
        for (const alpha of [0.1, 0.3, 0.01]) {
          const ours = tf.engine().runKernel<tf.Tensor>(LEAKY_RELU_GRAD, { dy }, { x: xz, alpha } as unknown as tf.NamedAttrMap);
          assertBitwise(ours, tf.where(tf.greater(xz, 0), dy, tf.mul(dy, alpha)), `LeakyReluGrad α ${alpha}`);
        }
      });
    });

    onTf("max pool mask gradient: bitwise TensorFlow's MaxPoolGrad, its adjoint bitwise the tap gather", () => {
      for (const [shape, f] of [[[3, 6, 6, 4], 2], [[2, 7, 7, 3], 2], [[2, 9, 8, 2], 3], [[1, 5, 5, 1], 1]] as const) {
        tf.tidy(() => {
          const x = poolInput([...shape]);
          const y = tf.maxPool(x, f, f, 'valid');
          const dy = randomTensor(rng, y.shape);
          const a = { x, y, fh: f, fw: f } as unknown as tf.NamedAttrMap;
          const ours = tf.engine().runKernel<tf.Tensor>(MAX_POOL_GRAD_MASK, { dy }, a);
          const tfs = tf.engine().runKernel<tf.Tensor>(tf.MaxPoolGrad, { dy, input: x, output: y }, { filterSize: f, strides: f, pad: 'valid' });
          assertBitwise(ours, tfs, `MaxPoolGrad [${shape.join(',')}] ${f}×${f}`);
          const ddx = randomTensor(rng, x.shape);
          const gathered = tf.engine().runKernel<tf.Tensor>(MAX_POOL_GATHER_MASK, { ddx }, a);
          assertBitwise(gathered, gatherAtArgmax(ddx as tf.Tensor4D, x, y, { filterSize: f, strides: f, pad: 'valid' }), `gather [${shape.join(',')}] ${f}×${f}`);
        });
      }
    });

    onTf('batch norm: fused forward and gradients agree with the composite (float32 rounding)', () => {
      for (const shape of [[8, 5, 5, 6], [30, 4], [2, 3, 7]]) {
        tf.tidy(() => {
          const c = shape[shape.length - 1]!;
          const x = tf.add(tf.mul(randomTensor(rng, shape), 3), 1);
          const s = randomTensor(rng, [c], 0.5, 1.5);
          const o = randomTensor(rng, [c]);
          const w = randomTensor(rng, shape);
          const loss = (bn: typeof batchNormComposite) => (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(tf.square(bn(a, b, d, 1e-5)), w));
          assert.ok(maxRelDiff(batchNormTraining(x, s, o, 1e-5), batchNormComposite(x, s, o, 1e-5)) < 1e-5, 'forward');
          const fused = tf.grads(loss(batchNormTraining))([x, s, o]);
          const comp = tf.grads(loss(batchNormComposite))([x, s, o]);
          fused.forEach((g, i) => assert.ok(maxRelDiff(g, comp[i]!) < 1e-4, `gradient ${i} [${shape.join(',')}]: ${maxRelDiff(g, comp[i]!)}`));
          // second order: the gradient of a functional of the gradient, fused vs composite
          const hv = (bn: typeof batchNormComposite) => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.grads(loss(bn))([a, b, o])[0]!, w)))([x, s]);
          const hf = hv(batchNormTraining);
          const hc = hv(batchNormComposite);
          hf.forEach((g, i) => assert.ok(maxRelDiff(g, hc[i]!) < 1e-3, `second order ${i} [${shape.join(',')}]: ${maxRelDiff(g, hc[i]!)}`));
          // the one-kernel second derivative is bitwise its tfjs composite
          tf.unregisterKernel(BATCH_NORM_GRAD_GRAD, 'tensorflow');
          try {
            hv(batchNormTraining).forEach((g, i) => assertBitwise(hf[i]!, g, `second order ${i}, kernel vs composite [${shape.join(',')}]`));
          } finally {
            tf.registerKernel(batchNormGradGradTensorflowConfig);
          }
        });
      }
    });

    onTf('a Conv4 block runs the fused kernels, first and second order, and leaks nothing', async () => {
      const x = tf.keep(randomTensor(rng, [3, 8, 8, 2]));
      const wt = tf.keep(randomTensor(rng, [3, 3, 2, 4]));
      const s = tf.keep(randomTensor(rng, [4], 0.5, 1.5));
      const o = tf.keep(randomTensor(rng, [4]));
      const block = (w: tf.Tensor, sc: tf.Tensor) => tf.sum(tf.square(tf.maxPool(tf.relu<tf.Tensor4D>(batchNormTraining(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), sc, o, 1e-5)), 2, 2, 'valid')));
      const inner = (w: tf.Tensor, sc: tf.Tensor) => {
        const [gw, gs] = tf.grads(block)([w, sc]);
        return block(tf.sub(w, tf.mul(0.1, gw!)), tf.sub(sc, tf.mul(0.1, gs!)));
      };
      const used = await kernelsOf(() => tf.grads(inner)([wt, s]));
      for (const k of [BATCH_NORM, BATCH_NORM_GRAD, BATCH_NORM_GRAD_GRAD, RELU_GRAD, MAX_POOL_GRAD_MASK, MAX_POOL_GATHER_MASK]) assert.ok(used.has(k), `${k} used: ${[...used.keys()].join(', ')}`);
      for (const k of ['Step', 'MaxPoolGrad', 'Sqrt']) assert.ok(!used.has(k), `${k} not used`);
      // Leaks: the same as with tfjs-node's kernels and the composites (nested tf.grads itself keeps
      // 2 tensors per call on every backend, with or without these kernels).
      const handles = () => (tf.backend() as unknown as { binding: { getNumOfTensors(): number } }).binding.getNumOfTensors();
      const leaks = () => {
        tf.tidy(() => tf.grads(inner)([wt, s])); // warm: the kept shape/axis constants exist now
        const t0 = tf.memory().numTensors;
        const h0 = handles();
        tf.tidy(() => tf.grads(inner)([wt, s]));
        return { tensors: tf.memory().numTensors - t0, handles: handles() - h0 };
      };
      const ours = leaks();
      restoreTensorflowKernels();
      try {
        assert.deepEqual(ours, leaks(), 'tfjs tensors and TensorFlow handles left after a second-order gradient: ours vs upstream');
      } finally {
        registerTensorflowKernels();
      }
      tf.dispose([x, wt, s, o]);
    });

    onTf('every model gets them through the layer graph: a second-order shard of conv4 and of resnet12', async () => {
      const models = [
        [{ kind: 'conv4', filters: 4, pool: 'max' }, [RELU_GRAD, MAX_POOL_GRAD_MASK, MAX_POOL_GATHER_MASK]],
        [{ kind: 'conv4', filters: 4, pool: 'stride' }, [RELU_GRAD]],
        [{ kind: 'resnet12', channels: [2, 2, 2, 2] }, [LEAKY_RELU_GRAD, MAX_POOL_GRAD_MASK, MAX_POOL_GATHER_MASK]],
      ] as const;
      for (const [model, alsoUsed] of models) {
        const spec = validateSpec({
          name: 'kernels-in-graph',
          task: { family: 'synthetic-glyphs', ways: 2, shots: 1, queries: 1, imageSize: 16 },
          model,
          algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 },
        });
        const info = await tf.profile(async () => {
          await computeShard(spec, initParams(spec).data, { kind: 'train', taskSeeds: [1] }, { batchTasks: false });
          return [];
        });
        const used = new Set(info.kernels.map((k) => k.name));
        const what = `${model.kind} ${JSON.stringify(model)}`;
        for (const k of [BATCH_NORM, BATCH_NORM_GRAD, BATCH_NORM_GRAD_GRAD, SGD_STEP, SGD_STEP_GRAD, ...alsoUsed]) assert.ok(used.has(k), `${what}: ${k} used (${[...used].join(', ')})`);
        for (const k of ['Sqrt', 'MaxPoolGrad', 'Step', 'Greater']) assert.ok(!used.has(k), `${what}: ${k} not used`);
      }
    });
  });
});

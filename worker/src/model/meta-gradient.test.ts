/**
 * Layer graphs end to end: shapes, and the exact second-order MAML meta-gradient (2 inner steps,
 * softmax cross-entropy) against central finite differences along random directions, for Conv4
 * (max-pool and stride 2), a small ResNet-12 and a residual `kind: layers` graph.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, modelLayers, paramLayout, Rng, validateSpec, type RunSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { adapt, createFomaml, createMaml } from '../algorithms/maml.js';
import type { InnerLoop, TaskTensors } from '../algorithms/types.js';
import { registerSecondOrderGradients, restoreUpstreamGradients } from '../gradients/register.js';
import { lossOf } from '../algorithms/loss.js';
import { randomTensor, relErr } from '@metaloop/testing/numerics';
import { useTestBackend } from '../testing/backend.js';
import { createModel } from './model.js';

const smallSpecFields = (imageSize: number) => ({
  name: 'graph-test',
  seed: 3,
  task: { family: 'synthetic-glyphs', ways: 3, shots: 2, queries: 3, imageSize },
  algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.3 },
});

function smallSpec(model: Record<string, unknown>, imageSize: number): RunSpec {
  return validateSpec({ ...smallSpecFields(imageSize), model });
}

const conv4 = (pool: 'max' | 'stride') => ({ kind: 'conv4', filters: 4, pool });

/** A residual graph of the contract's shape, with other layer types on the way (gelu, average pool, layer norm). */
const RESIDUAL = {
  kind: 'layers',
  layers: [
    { type: 'Conv2D', name: 'conv0', filters: 3, kernel_size: 3, padding: 'same' },
    { type: 'BatchNormalization', name: 'bn0' },
    { type: 'Activation', activation: 'gelu' },
    { type: 'MaxPooling2D', pool_size: 2, name: 'mp' },
    { type: 'Conv2D', name: 'skip', filters: 3, kernel_size: 1, strides: 2, use_bias: false, inputs: ['bn0'] },
    { type: 'Add', name: 'join', inputs: ['skip', 'mp'] },
    { type: 'AveragePooling2D', pool_size: 2 },
    { type: 'Flatten' },
    { type: 'LayerNormalization' },
    { type: 'Dense', name: 'head' },
  ],
};

/**
 * ResNet-12's topology (the preset's layer list: 3×3 no-bias convs, BN, the 1×1 conv + BN shortcut,
 * the join, global average pooling, the head) with its piecewise-linear parts made smooth (leaky
 * ReLU → gelu, max-pool → average pool). With leaky ReLU and max-pool the MAML objective is not
 * even continuous (the inner gradient jumps where a unit switches, and θ′ with it; a 12-layer
 * net switches inside every stencil float32 allows), so finite differences say nothing there; the
 * piecewise layers are exact on their own (model/layers.test.ts) and compose by the chain rule.
 */
function smoothResnet12(channels: number[], imageSize: number): Record<string, unknown> {
  const layers = modelLayers(validateSpec({ ...smallSpecFields(imageSize), model: { kind: 'resnet12', channels } }).model, {
    inputShape: [imageSize, imageSize, 1],
    outputs: 3,
    image: { size: imageSize, channels: 1 },
    family: 'synthetic-glyphs',
  }).map((l) => (l.type === 'LeakyReLU' ? { type: 'Activation', name: l.name, activation: 'gelu' } : l.type === 'MaxPooling2D' ? { ...l, type: 'AveragePooling2D' } : l));
  assert.equal(layers.filter((l) => l.type === 'Add').length, 4);
  return { kind: 'layers', layers };
}

function setup(modelSpec: Record<string, unknown>, imageSize: number, rng: Rng) {
  const spec = smallSpec(modelSpec, imageSize);
  const model = createModel(spec);
  const inner: InnerLoop = {
    model,
    loss: lossOf('xent'),
    layout: paramLayout(spec),
    innerSteps: 2,
    innerLr: 0.3,
    batched: false,
  };
  const init = initParams(spec);
  let off = 0;
  const theta = init.layout.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    // perturb the init a little so BN scales/offsets and biases are not at special values
    const v = tf.add(tf.tensor(init.data.slice(off, off + n), [...t.shape]), tf.mul(randomTensor(rng, [...t.shape]), 0.2));
    off += n;
    return tf.keep(v);
  });
  const y = (labels: number[]) => tf.keep(tf.oneHot(tf.tensor1d(labels, 'int32'), 3).toFloat());
  const task: TaskTensors = {
    xs: tf.keep(randomTensor(rng, [6, imageSize, imageSize, 1], 0, 1)),
    ys: y([0, 1, 2, 0, 1, 2]),
    xq: tf.keep(randomTensor(rng, [9, imageSize, imageSize, 1], 0, 1)),
    yq: y([0, 1, 2, 2, 1, 0, 0, 2, 1]),
  };
  return { spec, model, inner, theta, task };
}

/** MAML objective: query loss after the inner loop, as a plain number. */
function objective(inner: InnerLoop, params: tf.Tensor[], task: TaskTensors): number {
  return tf.tidy(() => {
    const adapted = adapt(inner, params, task, inner.innerSteps);
    const named: Record<string, tf.Tensor> = {};
    inner.model.layout.forEach((t, i) => (named[t.name] = adapted[i]!));
    return inner.loss.fn(inner.model.forward(named, task.xq), task.yq).dataSync()[0]!;
  });
}

describe('layer graphs: second-order meta-gradients', () => {
  before(async () => {
    await useTestBackend();
    registerSecondOrderGradients();
  });

  for (const [pool, size, side] of [['max', 16, 1], ['stride', 12, 1], ['max', 28, 1], ['stride', 28, 2]] as const) {
    test(`conv4 forward shapes (${pool}, ${size}x${size})`, () => {
      const rng = new Rng(1);
      const { model, theta } = setup(conv4(pool), size, rng);
      assert.deepEqual(model.layout.at(-2)!.shape, [side * side * 4, 3]);
      tf.tidy(() => {
        const named: Record<string, tf.Tensor> = {};
        model.layout.forEach((t, i) => (named[t.name] = theta[i]!));
        const out = model.forward(named, randomTensor(rng, [5, size, size, 1]));
        assert.deepEqual(out.shape, [5, 3]);
        assert.ok(Array.from(out.dataSync()).every(Number.isFinite));
      });
      tf.dispose(theta);
    });
  }

  // [label, model, image size, h]: piecewise-linear models need the smallest stencil float32 allows.
  const cases: [string, Record<string, unknown>, number, number][] = [
    ['conv4 max', conv4('max'), 16, 1e-4],
    ['conv4 stride', conv4('stride'), 12, 1e-4],
    ['ResNet-12 [2, 3, 2, 2] (smooth activations and pools)', smoothResnet12([2, 3, 2, 2], 16), 16, 1e-3],
    // h = 1e-3: at 1e-4 the float32 loss's round-off alone moved the central difference by ~1e-2 of
    // the gradient on tensorflow's fused batch norm (analytic equal to the composite's to 1e-7);
    // the h-vs-2h check still skips the directions where the max-pool switches inside the stencil.
    ['a residual layers graph (gelu, max and average pools, layer norm)', RESIDUAL, 8, 1e-3],
  ];
  cases.forEach(([label, modelSpec, size, h], c) => {
    test(`${label}: second-order MAML meta-gradient (2 steps) matches central finite differences`, () => {
      const rng = new Rng(11 + c);
      const { inner, theta, task } = setup(modelSpec, size, rng);
      const before = tf.memory().numTensors;
      const maml = createMaml();
      const fomaml = createFomaml();
      // The MAML objective is only piecewise smooth (ReLU and max-pool switch; batch norm over 6
      // support images makes some switch within ±1e-3 of most points), and float32 round-off limits
      // how small h can be. So each direction is checked with h = 1e-4 and 2e-4: where the two
      // disagree, a switch lies inside the stencil and the direction says nothing about the
      // analytic value; it is skipped (counted). Errors are relative to max(|analytic|, |numeric|,
      // 0.05·|meta-gradient|): a directional derivative near 0 is judged against the gradient's size.
      const gradNorm = (gs: tf.Tensor[]) => Math.sqrt(gs.reduce((s, g) => s + tf.sum(tf.square(g)).dataSync()[0]!, 0));
      let clean = 0;
      let skipped = 0;
      let fomamlWorst = 0;
      for (let k = 0; clean < 3 && k < 8; k++) {
        tf.tidy(() => {
          // A unit direction over all of θ.
          const raw = theta.map((t) => randomTensor(rng, t.shape));
          const norm = Math.sqrt(raw.reduce((s, d) => s + tf.sum(tf.square(d)).dataSync()[0]!, 0));
          const dir = raw.map((d) => tf.div(d, norm));
          const r = maml.metaGradient(inner, theta, task);
          const floor = 0.05 * gradNorm(r.grads);
          const analytic = r.grads.reduce((s, g, i) => s + tf.sum(tf.mul(g, dir[i]!)).dataSync()[0]!, 0);
          const fd = (h: number) =>
            (objective(inner, theta.map((t, i) => tf.add(t, tf.mul(dir[i]!, h))), task) -
              objective(inner, theta.map((t, i) => tf.sub(t, tf.mul(dir[i]!, h))), task)) /
            (2 * h);
          const numeric = fd(h);
          if (relErr(numeric, fd(2 * h), floor) > 1e-2) {
            skipped++;
            return;
          }
          clean++;
          const e = relErr(analytic, numeric, floor);
          assert.ok(e < 2e-2, `direction ${k}: analytic ${analytic}, numeric ${numeric}, rel err ${e}`);
          const fo = fomaml.metaGradient(inner, theta, task);
          const first = fo.grads.reduce((s, g, i) => s + tf.sum(tf.mul(g, dir[i]!)).dataSync()[0]!, 0);
          fomamlWorst = Math.max(fomamlWorst, relErr(first, numeric, floor));
        });
      }
      assert.ok(clean >= 3, `only ${clean} of ${clean + skipped} directions had a smooth stencil`);
      // The check is sensitive: the first-order value is far off.
      assert.ok(fomamlWorst > 0.05, `FOMAML's directional derivative should differ from MAML's (${fomamlWorst})`);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      tf.dispose([...theta, task.xs, task.ys, task.xq, task.yq]);
    });
  });

  test('without the registered gradients, second-order MAML through Conv4 throws', () => {
    const rng = new Rng(5);
    const { inner, theta, task } = setup(conv4('stride'), 12, rng);
    restoreUpstreamGradients();
    try {
      // (on tensorflow the fused batch norm's gradients are the worker's too, and met first)
      assert.throws(() => tf.tidy(() => createMaml().metaGradient(inner, theta, task).grads), /gradient function not found for (Conv2DBackpropFilter|MetaloopBatchNorm)/);
    } finally {
      registerSecondOrderGradients();
      tf.dispose([...theta, task.xs, task.ys, task.xq, task.yq]);
    }
  });
});

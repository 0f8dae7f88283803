/**
 * Reptile, Meta-SGD, ANIL and the MAML++ options: meta-gradients against central finite differences
 * of each algorithm's meta-objective (MLP with tanh: smooth, so every direction is clean; Conv4 with
 * softmax cross-entropy for ANIL and Meta-SGD), plus identities that tie them to MAML.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, paramLayout, Rng, validateSpec, type RunSpec, type RunSpecInput } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { registerSecondOrderGradients } from '../gradients/register.js';
import { createModel } from '../model/model.js';
import { randomTensor, relErr } from '@metaloop/testing/numerics';
import { useTestBackend } from '../testing/backend.js';
import { createAlgorithm } from './index.js';
import { lossOf } from './loss.js';
import { taskLoss } from './maml.js';
import type { InnerLoop, TaskTensors } from './types.js';
import { adaptWithRule, innerRule } from './variants.js';

function mlpSpec(algorithm: RunSpecInput['algorithm']): RunSpec {
  return validateSpec({
    name: 'variants',
    seed: 9,
    task: { family: 'sinusoid', shots: 6, queries: 6 },
    model: { kind: 'mlp', hidden: [8, 8], activation: 'tanh' },
    algorithm,
  });
}

function setup(spec: RunSpec, rng: Rng, xent = false) {
  const model = createModel(spec);
  const inner: InnerLoop = {
    model,
    loss: lossOf(xent ? 'xent' : 'mse'),
    layout: paramLayout(spec),
    innerSteps: spec.algorithm.innerSteps,
    innerLr: spec.algorithm.innerLr,
    batched: false,
  };
  const init = initParams(spec);
  let off = 0;
  const theta = init.layout.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const base = tf.tensor(init.data.slice(off, off + n), [...t.shape]);
    off += n;
    // perturb model tensors a little; learned rates stay near innerLr
    const scale = t.name.startsWith('lr.') || t.name.startsWith('lslr.') ? 0.2 * spec.algorithm.innerLr : 0.1;
    return tf.keep(tf.add(base, tf.mul(randomTensor(rng, [...t.shape]), scale)));
  });
  let task: TaskTensors;
  if (xent) {
    const s = spec.task.family === 'synthetic-glyphs' ? spec.task.imageSize : 0;
    const y = (labels: number[]) => tf.keep(tf.oneHot(tf.tensor1d(labels, 'int32'), 3).toFloat());
    task = {
      xs: tf.keep(randomTensor(rng, [6, s, s, 1], 0, 1)),
      ys: y([0, 1, 2, 0, 1, 2]),
      xq: tf.keep(randomTensor(rng, [6, s, s, 1], 0, 1)),
      yq: y([2, 1, 0, 0, 1, 2]),
    };
  } else {
    const xs = tf.keep(randomTensor(rng, [6, 1], -3, 3));
    const xq = tf.keep(randomTensor(rng, [6, 1], -3, 3));
    task = { xs, ys: tf.keep(tf.sin(xs)), xq, yq: tf.keep(tf.sin(xq)) };
  }
  return { inner, theta, task };
}

/** The meta-objective each algorithm differentiates, evaluated with no outer tape. */
function objective(spec: RunSpec, inner: InnerLoop, params: tf.Tensor[], task: TaskTensors): number {
  return tf.tidy(() => {
    const rule = innerRule(spec);
    const losses: tf.Tensor[] = [];
    const adapted = adaptWithRule(rule, inner, params, task, inner.innerSteps, 0, (q) => losses.push(taskLoss(inner, q, task.xq, task.yq)));
    const value = rule.multiStepLoss ? tf.div(tf.addN(losses), losses.length) : taskLoss(inner, adapted, task.xq, task.yq);
    return value.dataSync()[0]!;
  });
}

function dot(a: readonly tf.Tensor[], b: readonly tf.Tensor[]): number {
  return a.reduce((s, t, i) => s + tf.sum(tf.mul(t, b[i]!)).dataSync()[0]!, 0);
}

/** Directional derivative checks along unit directions; kink-crossing stencils are skipped. */
function checkAgainstFd(spec: RunSpec, inner: InnerLoop, theta: tf.Tensor[], task: TaskTensors, rng: Rng, h: number, want = 3): void {
  const algorithm = createAlgorithm(spec);
  let clean = 0;
  for (let k = 0; clean < want && k < 8; k++) {
    tf.tidy(() => {
      const raw = theta.map((t) => randomTensor(rng, t.shape));
      const norm = Math.sqrt(dot(raw, raw));
      const dir = raw.map((d) => tf.div(d, norm));
      const r = algorithm.metaGradient(inner, theta, task);
      const floor = 0.05 * Math.sqrt(dot(r.grads, r.grads));
      const analytic = dot(r.grads, dir);
      const fd = (step: number) =>
        (objective(spec, inner, theta.map((t, i) => tf.add(t, tf.mul(dir[i]!, step))), task) -
          objective(spec, inner, theta.map((t, i) => tf.sub(t, tf.mul(dir[i]!, step))), task)) /
        (2 * step);
      const numeric = fd(h);
      if (relErr(numeric, fd(2 * h), floor) > 1e-2) return;
      clean++;
      const e = relErr(analytic, numeric, floor);
      assert.ok(e < 2e-2, `${spec.algorithm.kind}: analytic ${analytic}, numeric ${numeric}, rel err ${e}`);
    });
  }
  assert.ok(clean >= want, `only ${clean} clean directions`);
}

describe('algorithm variants', () => {
  before(async () => {
    await useTestBackend();
    registerSecondOrderGradients();
  });

  const mlpCases: [string, RunSpecInput['algorithm']][] = [
    ['metasgd', { kind: 'metasgd', innerSteps: 2, innerLr: 0.05 }],
    ['anil', { kind: 'anil', innerSteps: 2, innerLr: 0.1 }],
    ['maml++ (multi-step loss, learned per-layer per-step rates)', { kind: 'maml', innerSteps: 2, innerLr: 0.05, multiStepLoss: true, learnedLayerLr: true }],
    ['anil + learned rates', { kind: 'anil', innerSteps: 2, innerLr: 0.1, learnedLayerLr: true }],
    ['maml, multi-step loss only', { kind: 'maml', innerSteps: 3, innerLr: 0.05, multiStepLoss: true }],
  ];
  for (const [name, algorithm] of mlpCases) {
    test(`${name}: MLP meta-gradient matches finite differences`, () => {
      const spec = mlpSpec(algorithm);
      const rng = new Rng(name.length);
      const { inner, theta, task } = setup(spec, rng);
      const before = tf.memory().numTensors;
      checkAgainstFd(spec, inner, theta, task, rng, 1e-3);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      tf.dispose([...theta, task.xs, task.ys, task.xq, task.yq]);
    });
  }

  for (const kind of ['anil', 'metasgd'] as const) {
    test(`${kind}: Conv4 (stride 2) second-order meta-gradient with softmax cross-entropy matches finite differences`, () => {
      const spec = validateSpec({
        name: 'variants-conv4',
        task: { family: 'synthetic-glyphs', ways: 3, shots: 2, queries: 2, imageSize: 12 },
        model: { kind: 'conv4', filters: 4, pool: 'stride' },
        algorithm: { kind, innerSteps: 2, innerLr: 0.3 },
      });
      const rng = new Rng(kind === 'anil' ? 101 : 102);
      const { inner, theta, task } = setup(spec, rng, true);
      checkAgainstFd(spec, inner, theta, task, rng, 1e-4);
      tf.dispose([...theta, task.xs, task.ys, task.xq, task.yq]);
    });
  }

  test('Meta-SGD with every rate at innerLr, and MAML++ rates at innerLr, give MAML’s value and model gradient', () => {
    const maml = mlpSpec({ kind: 'maml', innerSteps: 2, innerLr: 0.05 });
    const rng = new Rng(4);
    const base = setup(maml, rng);
    for (const other of [mlpSpec({ kind: 'metasgd', innerSteps: 2, innerLr: 0.05 }), mlpSpec({ kind: 'maml', innerSteps: 2, innerLr: 0.05, learnedLayerLr: true })]) {
      tf.tidy(() => {
        const layout = paramLayout(other);
        const extras = layout.slice(base.theta.length).map((t) => tf.fill([...t.shape], 0.05));
        const inner: InnerLoop = { ...base.inner, layout };
        const a = createAlgorithm(maml).metaGradient(base.inner, base.theta, base.task);
        const b = createAlgorithm(other).metaGradient(inner, [...base.theta, ...extras], base.task);
        assert.ok(Math.abs(a.postLoss.dataSync()[0]! - b.postLoss.dataSync()[0]!) < 1e-6);
        assert.equal(b.grads.length, layout.length);
        a.grads.forEach((g, i) => {
          const d = tf.max(tf.abs(tf.sub(g, b.grads[i]!))).dataSync()[0]!;
          assert.ok(d < 1e-5, `${other.algorithm.kind} grad ${layout[i]!.name} differs by ${d}`);
        });
      });
    }
    tf.dispose([...base.theta, base.task.xs, base.task.ys, base.task.xq, base.task.yq]);
  });

  test('ANIL adapts the head only; Reptile sends θ − θ′ (= α∇L_support after one step)', () => {
    const rng = new Rng(8);
    const anil = mlpSpec({ kind: 'anil', innerSteps: 2, innerLr: 0.1 });
    const a = setup(anil, rng);
    tf.tidy(() => {
      const adapted = adaptWithRule(innerRule(anil), a.inner, a.theta, a.task, 2);
      a.inner.layout.forEach((t, i) => {
        const moved = tf.max(tf.abs(tf.sub(adapted[i]!, a.theta[i]!))).dataSync()[0]! > 0;
        assert.equal(moved, t.name.startsWith('l2.'), t.name);
      });
    });
    const reptile = mlpSpec({ kind: 'reptile', innerSteps: 1, innerLr: 0.1 });
    tf.tidy(() => {
      const r = createAlgorithm(reptile).metaGradient({ ...a.inner, innerSteps: 1 }, a.theta, a.task);
      const g = tf.grads((...p: tf.Tensor[]) => taskLoss(a.inner, p, a.task.xs, a.task.ys))(a.theta);
      r.grads.forEach((d, i) => {
        const diff = tf.max(tf.abs(tf.sub(d, tf.mul(g[i]!, 0.1)))).dataSync()[0]!;
        assert.ok(diff < 1e-6, `reptile ${a.inner.layout[i]!.name}: ${diff}`);
      });
    });
    tf.dispose([...a.theta, a.task.xs, a.task.ys, a.task.xq, a.task.yq]);
  });

  test('evaluate runs the learned rates for more steps than training', () => {
    const spec = mlpSpec({ kind: 'metasgd', innerSteps: 1, innerLr: 0.05 });
    const rng = new Rng(12);
    const { inner, theta, task } = setup(spec, rng);
    tf.tidy(() => {
      const r = createAlgorithm(spec).evaluate(inner, theta, task, 5);
      assert.equal(r.losses.length, 6);
      const l = r.losses.map((t) => t.dataSync()[0]!);
      assert.ok(l[5]! < l[0]!, `query loss should fall with adaptation: ${l.join(', ')}`);
    });
    tf.dispose([...theta, task.xs, task.ys, task.xq, task.yq]);
  });
});

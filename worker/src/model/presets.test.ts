/**
 * The presets on the layer graph compute exactly what the hand-written models computed
 * (../testing/reference-models.ts, kept verbatim): the same float operations in the same order,
 * so outputs and second-order MAML meta-gradients are BITWISE equal, per task and task-batched,
 * on METALOOP_TEST_BACKEND (cpu, wasm, tensorflow). θ₀ and checkpoints keep their meaning too:
 * the same tensor names and order (shared's layout tests; θ₀ bitwise by its seeded stream).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, paramLayout, Rng, validateSpec, type RunSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { randomTensor } from '@metaloop/testing/numerics';
import { createMaml } from '../algorithms/maml.js';
import { lossOf } from '../algorithms/loss.js';
import type { InnerLoop, TaskTensors } from '../algorithms/types.js';
import { useTestBackend } from '../testing/backend.js';
import { referenceConv4BatchedForward, referenceConv4Forward, referenceMlpForward } from '../testing/reference-models.js';
import { createModels, type Model } from './model.js';

interface Preset {
  readonly label: string;
  readonly spec: RunSpec;
  readonly input: number[];
  readonly outputs: number;
  readonly reference: (params: Record<string, tf.Tensor>, x: tf.Tensor) => tf.Tensor;
  readonly referenceBatched: (params: Record<string, tf.Tensor>, x: tf.Tensor) => tf.Tensor;
}

const spec = (task: Record<string, unknown>, model: Record<string, unknown>) =>
  validateSpec({ name: 'presets', seed: 9, task, model, algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.3 } });
const glyphs = (imageSize: number) => ({ family: 'synthetic-glyphs', ways: 3, shots: 2, queries: 2, imageSize });

const PRESETS: Preset[] = [
  (() => {
    const s = spec({ family: 'sinusoid' }, { kind: 'mlp', hidden: [8, 8], fused: false });
    const f = (p: Record<string, tf.Tensor>, x: tf.Tensor) => referenceMlpForward(3, 'relu', p, x);
    return { label: 'mlp relu 1-8-8-1', spec: s, input: [1], outputs: 1, reference: f, referenceBatched: f };
  })(),
  (() => {
    const s = spec(glyphs(8), { kind: 'mlp', hidden: [6], activation: 'tanh', fused: false });
    const f = (p: Record<string, tf.Tensor>, x: tf.Tensor) => referenceMlpForward(2, 'tanh', p, x);
    return { label: 'mlp tanh on 8×8 images (flattened)', spec: s, input: [8, 8, 1], outputs: 3, reference: f, referenceBatched: f };
  })(),
  ...(
    [
      ['max', 16],
      ['stride', 13],
    ] as const
  ).map(([pool, size]): Preset => {
    const config = { pool, imageSize: size, channels: 1 } as const;
    return {
      label: `conv4 ${pool} ${size}×${size}`,
      spec: spec(glyphs(size), { kind: 'conv4', filters: 3, pool }),
      input: [size, size, 1],
      outputs: 3,
      reference: (p, x) => referenceConv4Forward(config, p, x),
      referenceBatched: (p, x) => referenceConv4BatchedForward(config, p, x),
    };
  }),
];

/** θ₀ perturbed (BN scales at 1, biases at 0 are special points), as tensors; `copies` on a leading axis. */
function thetaTensors(s: RunSpec, copies?: number): tf.Tensor[] {
  const init = initParams(s);
  const rng = new Rng(4);
  const data = init.data.map((v) => v + rng.uniform(-0.2, 0.2));
  let off = 0;
  return init.layout.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const part = data.subarray(off, off + n);
    off += n;
    if (copies === undefined) return tf.tensor(part, [...t.shape]);
    return tf.tile(tf.tensor(part, [1, ...t.shape]), [copies, ...t.shape.map(() => 1)]);
  });
}

function named(s: RunSpec, ts: readonly tf.Tensor[]): Record<string, tf.Tensor> {
  return Object.fromEntries(paramLayout(s).map((t, i) => [t.name, ts[i]!]));
}

/** A task (or T stacked tasks) of random inputs and one-hot / real targets. */
function task(p: Preset, rng: Rng, T?: number): TaskTensors {
  const lead = T === undefined ? [] : [T];
  const y = (n: number) => (p.outputs === 1 ? randomTensor(rng, [...lead, n, 1]) : tf.oneHot(tf.tensor(Array.from({ length: (T ?? 1) * n }, (_, i) => i % p.outputs), [...lead, n], 'int32'), p.outputs).toFloat());
  return { xs: randomTensor(rng, [...lead, 6, ...p.input], 0, 1), ys: y(6), xq: randomTensor(rng, [...lead, 5, ...p.input], 0, 1), yq: y(5) };
}

function inner(p: Preset, model: Model, batched: boolean): InnerLoop {
  return { model, loss: lossOf(p.outputs === 1 ? 'mse' : 'xent'), layout: paramLayout(p.spec), innerSteps: 2, innerLr: 0.3, batched };
}

const bits = (ts: readonly tf.Tensor[]) => ts.map((t) => Array.from(t.dataSync()));

describe('presets on the layer graph equal the hand-written models bit for bit', () => {
  let backend = '';
  before(async () => {
    backend = await useTestBackend();
  });

  for (const p of PRESETS) {
    test(`${p.label}: outputs and second-order meta-gradients, per task and task-batched`, () => {
      const { perTask, batched } = createModels(p.spec);
      const refModel = (f: Preset['reference']): Model => ({ kind: 'reference', layout: perTask.layout, forward: f });
      const maml = createMaml();
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const rng = new Rng(7);
        const theta = thetaTensors(p.spec);
        const t = task(p, rng);
        assert.deepEqual(bits([perTask.forward(named(p.spec, theta), t.xs)]), bits([p.reference(named(p.spec, theta), t.xs)]), `${backend}: per-task outputs`);
        const got = maml.metaGradient(inner(p, perTask, false), theta, t);
        const want = maml.metaGradient(inner(p, refModel(p.reference), false), theta, t);
        assert.deepEqual(bits(got.grads), bits(want.grads), `${backend}: per-task meta-gradient`);
        assert.deepEqual(bits([got.postLoss]), bits([want.postLoss]));

        const tiled = thetaTensors(p.spec, 3);
        const tb = task(p, rng, 3);
        assert.deepEqual(bits([batched.forward(named(p.spec, tiled), tb.xs)]), bits([p.referenceBatched(named(p.spec, tiled), tb.xs)]), `${backend}: batched outputs`);
        const gb = maml.metaGradient(inner(p, batched, true), tiled, tb);
        const wb = maml.metaGradient(inner(p, refModel(p.referenceBatched), true), tiled, tb);
        assert.deepEqual(bits(gb.grads), bits(wb.grads), `${backend}: batched meta-gradient`);
      });
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    });
  }
});

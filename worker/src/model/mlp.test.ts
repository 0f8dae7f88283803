/**
 * The MLP on image families: inputs [N, h, w, c] are flattened per example, so the forward pass
 * equals the one on pre-flattened inputs (single and task-batched), and the second-order MAML
 * meta-gradient through it matches central finite differences of the meta-objective.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, paramLayout, Rng, validateSpec, type RunSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { computeShard, type EvalShardResult, type TrainShardResult } from '../engine.js';
import { registerSecondOrderGradients } from '../gradients/register.js';
import { randomTensor, relErr } from '@metaloop/testing/numerics';
import { useTestBackend } from '../testing/backend.js';
import { createModels } from './model.js';

function imageSpec(): RunSpec {
  return validateSpec({
    name: 'mlp-images',
    seed: 5,
    task: { family: 'synthetic-glyphs', ways: 3, shots: 2, queries: 2, imageSize: 8 },
    model: { kind: 'mlp', hidden: [6], activation: 'tanh' },
    algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.3 },
  });
}

/** θ as named tensors, each with `copies` copies on a leading axis when given. */
function named(spec: RunSpec, theta: Float32Array, copies?: number): Record<string, tf.Tensor> {
  let off = 0;
  const out: Record<string, tf.Tensor> = {};
  for (const t of paramLayout(spec)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const part = theta.subarray(off, off + n);
    off += n;
    out[t.name] = copies === undefined ? tf.tensor(part.slice(), [...t.shape]) : tf.tile(tf.tensor(part.slice(), [1, ...t.shape]), [copies, ...t.shape.map(() => 1)]);
  }
  return out;
}

describe('mlp on image inputs', () => {
  before(async () => {
    await useTestBackend();
    registerSecondOrderGradients();
  });

  test('flattens [N, h, w, c] (and [T, N, h, w, c] when batched) like pre-flattened inputs', () => {
    const spec = imageSpec();
    const { perTask: model, batched } = createModels(spec);
    const theta = initParams(spec).data;
    const rng = new Rng(1);
    tf.tidy(() => {
      const x = randomTensor(rng, [4, 8, 8, 1], 0, 1);
      const y = model.forward(named(spec, theta), x);
      assert.deepEqual(y.shape, [4, 3]);
      const flat = model.forward(named(spec, theta), tf.reshape(x, [4, 64]));
      assert.deepEqual(Array.from(y.dataSync()), Array.from(flat.dataSync()));
      const xb = randomTensor(rng, [2, 4, 8, 8, 1], 0, 1);
      const yb = batched.forward(named(spec, theta, 2), xb);
      assert.deepEqual(yb.shape, [2, 4, 3]);
      for (let t = 0; t < 2; t++) {
        const one = model.forward(named(spec, theta), tf.squeeze(tf.slice(xb, [t], [1]), [0]));
        const got = tf.squeeze(tf.slice(yb, [t], [1]), [0]);
        assert.ok(tf.max(tf.abs(tf.sub(one, got))).dataSync()[0]! < 1e-5);
      }
    });
  });

  test('MAML meta-gradient on synthetic-glyphs matches central finite differences', async () => {
    const spec = imageSpec();
    const theta = initParams(spec).data;
    const seeds = [11, 12];
    const r = (await computeShard(spec, theta, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
    assert.equal(r.grad.length, theta.length);
    // One task at a time through tfjs (r took the fused host path: MLP + maml).
    const single = (await computeShard(spec, theta, { kind: 'train', taskSeeds: seeds }, { batchTasks: false, fused: false })) as TrainShardResult;
    const rng = new Rng(2);
    for (let s = 0; s < 3; s++) {
      const d = Float32Array.from({ length: theta.length }, () => rng.normal());
      const norm = Math.hypot(...d);
      const h = 1e-2;
      const at = async (sign: number) => {
        const p = theta.map((v, i) => v + (sign * h * d[i]!) / norm);
        const q = (await computeShard(spec, p, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
        return q.postLossSum;
      };
      const fd = ((await at(1)) - (await at(-1))) / (2 * h);
      const an = r.grad.reduce((a, g, i) => a + (g * d[i]!) / norm, 0);
      const anSingle = single.grad.reduce((a, g, i) => a + (g * d[i]!) / norm, 0);
      assert.ok(relErr(fd, an, 1e-2) < 2e-2, `direction ${s}: fd ${fd} vs analytic ${an}`);
      assert.ok(relErr(an, anSingle, 1e-3) < 1e-4, `fused ${an} vs tfjs one task at a time ${anSingle}`);
    }
    const ev = (await computeShard(spec, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 2 })) as EvalShardResult;
    assert.equal(ev.evalAccuracySums?.length, 3);
    assert.ok(ev.evalLossSums.every(Number.isFinite));
  });
});

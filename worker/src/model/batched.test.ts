/**
 * Task-batched forwards (what a GPU runs: every task its own θ, one computation for the shard)
 * against the per-task forward, layer by layer and whole shards through the engine. On cpu and
 * wasm side by side in the main run, on tensorflow under METALOOP_TEST_BACKEND=tensorflow
 * (scripts/test-backends.mjs).
 *
 * Per layer, T = 3 tasks with their own parameters and inputs: outputs, first derivatives and
 * Hessian-vector products (the second-order term MAML needs) of Σ_t L_t equal task t's own.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, layerDef, Rng, validateSpec, type LayerContext, type RunSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { randomTensor } from '@metaloop/testing/numerics';
import { selectBackend } from '../backend.js';
import { compileRun, computeShard, type EvalShardResult, type TrainShardResult } from '../engine.js';
import { relativeError } from '../kernels/reference.js';
import { sideBySideBackends } from '../testing/backend.js';
import { LAYER_CASES, N, type LayerCase } from '../testing/layer-cases.js';
import { BATCH_ELEMENTS } from './model.js';

const T = 3;
const CTX: LayerContext = { name: 'layer', outputs: 3, lastDense: false };

/** Batched and per-task values of one layer: outputs, gradients and HVPs of a quadratic objective, per task. */
function compare(c: LayerCase, rng: Rng): { out: number; grad: number; hvp: number } {
  const def = layerDef(c.type)!;
  const config = def.schema.parse(c.options ?? {});
  const outShape = def.shape(config, c.inputs, CTX);
  const params = def.params?.(config, c.inputs, CTX) ?? [];
  return tf.tidy(() => {
    const P = params.map((p) => randomTensor(rng, [T, ...p.shape], p.param === 'scale' ? 0.5 : -0.8, p.param === 'scale' ? 1.5 : 0.8));
    const X = c.vocab
      ? [tf.tensor(Array.from({ length: T * N * c.inputs[0]!.reduce((a, b) => a * b, 1) }, () => rng.int(c.vocab!)), [T, N, ...c.inputs[0]!])]
      : c.inputs.map((s) => randomTensor(rng, [T, N, ...s]));
    const R = randomTensor(rng, [T, N, ...outShape]);
    const U = [...P, ...(c.vocab ? [] : X)].map((t) => randomTensor(rng, t.shape));
    const named = (ps: tf.Tensor[]) => Object.fromEntries(params.map((p, i) => [p.param, ps[i]!]));
    const runDef = (batched: boolean, ps: tf.Tensor[], xs: tf.Tensor[]) => {
      if (!batched) return def.forward(tf, config, xs, named(ps));
      if (def.forwardBatched !== 'fold') return def.forwardBatched(tf, config, xs, named(ps));
      const folded = xs.map((x) => tf.reshape(x, [T * N, ...x.shape.slice(2)]));
      const y = def.forward(tf, config, folded, named(ps));
      return tf.reshape(y, [T, N, ...y.shape.slice(1)]);
    };
    // vars: differentiable tensors (params, then inputs unless ids); loss quadratic in y.
    // Token ids are constants, not variables: `ids` is the batch's or one task's.
    const split = (vars: tf.Tensor[], ids: tf.Tensor[]) => ({ ps: vars.slice(0, P.length), xs: c.vocab ? ids : vars.slice(P.length) });
    const lossOf = (batched: boolean, r: tf.Tensor, ids: tf.Tensor[]) => (...vars: tf.Tensor[]) => {
      const { ps, xs } = split(vars, ids);
      const y = runDef(batched, ps, xs);
      return tf.add(tf.sum(tf.mul(r, y)), tf.mul(0.5, tf.sum(tf.square(y))));
    };
    const withHvp = (batched: boolean, vars: tf.Tensor[], r: tf.Tensor, u: tf.Tensor[], ids: tf.Tensor[]) => {
      const f = lossOf(batched, r, ids);
      const { ps, xs } = split(vars, ids);
      const y = runDef(batched, ps, xs);
      const g = tf.grads(f)(vars);
      const gu = (...v: tf.Tensor[]) => tf.addN(tf.grads(f)(v).map((gi, i) => tf.sum(tf.mul(gi, u[i]!))));
      return { y, g, h: tf.grads(gu)(vars) };
    };
    const vars = [...P, ...(c.vocab ? [] : X)];
    const batched = withHvp(true, vars, R, U, X);
    const take = (t: tf.Tensor, i: number) => tf.squeeze(tf.slice(t, [i], [1]), [0]);
    let out = 0;
    let grad = 0;
    let hvp = 0;
    for (let i = 0; i < T; i++) {
      const one = withHvp(false, vars.map((v) => take(v, i)), take(R, i), U.map((u) => take(u, i)), X.map((x) => take(x, i)));
      out = Math.max(out, relativeError(take(batched.y, i).dataSync(), one.y.dataSync()));
      one.g.forEach((g, k) => (grad = Math.max(grad, relativeError(take(batched.g[k]!, i).dataSync(), g.dataSync()))));
      one.h.forEach((h, k) => (hvp = Math.max(hvp, relativeError(take(batched.h[k]!, i).dataSync(), h.dataSync()))));
    }
    return { out, grad, hvp };
  });
}

/** θ perturbed away from the init (BN scales at 1, biases at 0 are special points). */
function theta(s: RunSpec, seed: number): Float32Array {
  const p = initParams(s).data.slice();
  const rng = new Rng(seed);
  for (let i = 0; i < p.length; i++) p[i] = p[i]! + rng.uniform(-0.1, 0.1);
  return p;
}

const glyphs = (model: Record<string, unknown>, kind: string, imageSize = 16): RunSpec =>
  validateSpec({
    name: 'batched-test',
    seed: 5,
    task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 2, imageSize },
    model,
    algorithm: { kind, innerSteps: 2, innerLr: 0.3 },
    outer: { shardSize: 3 },
  });

const SHARDS: [string, RunSpec][] = [
  ['conv4 max, maml', glyphs({ kind: 'conv4', filters: 4 }, 'maml')],
  ['conv4 stride, maml', glyphs({ kind: 'conv4', filters: 4, pool: 'stride' }, 'maml')],
  ['conv4 max, fomaml', glyphs({ kind: 'conv4', filters: 4 }, 'fomaml')],
  ['resnet12 [2,3,2,2], maml', glyphs({ kind: 'resnet12', channels: [2, 3, 2, 2] }, 'maml')],
];

describe('task-batched forwards equal the per-task forward', () => {
  before(async () => {
    await selectBackend({ require: sideBySideBackends()[0]! });
  });

  for (const backend of sideBySideBackends()) {
    LAYER_CASES.forEach((c, i) => {
      test(`${backend}: ${c.type}${c.label ? ` (${c.label})` : ''}: outputs, gradients, Hessian-vector products per task`, async () => {
        await selectBackend({ require: backend });
        const before = tf.memory().numTensors;
        const e = compare(c, new Rng(300 + i));
        assert.ok(e.out < 1e-5 && e.grad < 1e-5 && e.hvp < 1e-4, `rel err: out ${e.out}, grad ${e.grad}, hvp ${e.hvp}`);
        assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      });
    });

    for (const [label, s] of SHARDS) {
      test(`${backend}: a batched shard equals the per-task loop (${label}, 2 inner steps; train and eval)`, async () => {
        await selectBackend({ require: backend });
        const params = theta(s, 3);
        const work = { kind: 'train' as const, taskSeeds: [11, 12, 13] };
        const before = tf.memory().numTensors;
        const batched = (await computeShard(s, params, work, { batchTasks: true })) as TrainShardResult;
        const looped = (await computeShard(s, params, work, { batchTasks: false })) as TrainShardResult;
        assert.equal(tf.memory().numTensors, before, 'tensors leaked');
        const e = relativeError(batched.grad, looped.grad);
        assert.ok(e < 1e-4, `meta-gradient rel err ${e}`);
        assert.ok(Math.abs(batched.preLossSum - looped.preLossSum) < 1e-5 * Math.abs(looped.preLossSum));
        assert.ok(Math.abs(batched.postLossSum - looped.postLossSum) < 1e-4 * Math.abs(looped.postLossSum));
        const ev = { kind: 'eval' as const, taskSeeds: [21, 22], evalInnerSteps: 2 };
        const eb = (await computeShard(s, params, ev, { batchTasks: true })) as EvalShardResult;
        const el = (await computeShard(s, params, ev, { batchTasks: false })) as EvalShardResult;
        assert.ok(relativeError(eb.evalLossSums, el.evalLossSums) < 1e-4);
        assert.deepEqual(eb.evalAccuracySums, el.evalAccuracySums);
      });
    }
  }

  test('the batch bound: the largest activation of a task, here the first conv output; convolutions loop off a GPU', () => {
    const s = validateSpec({
      name: 'omniglot-like',
      task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 15, imageSize: 28 },
      model: { kind: 'conv4', filters: 64, pool: 'max' },
      algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 },
    });
    assert.equal(compileRun(s).maxTaskBatch, Math.floor(BATCH_ELEMENTS / (75 * 28 * 28 * 64)));
    assert.equal(compileRun(s).batchByDefault(), false, 'the cpu backend loops convolutional tasks by default');
    const mlp = validateSpec({ name: 'm', task: { family: 'sinusoid' }, model: { kind: 'mlp' }, algorithm: { kind: 'anil' } });
    assert.equal(compileRun(mlp).maxTaskBatch, 32);
    assert.equal(compileRun(mlp).batchByDefault(), true, 'dense graphs batch everywhere');
  });
});

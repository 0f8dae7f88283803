/**
 * Task-batched Conv4: the forward pass equals ./conv4.ts per task, and whole shards computed in one
 * batched pass equal the per-task loop (meta-gradients, losses, eval curves) within float32
 * rounding, for MAML (second order) and FOMAML, max-pool and stride 2, on cpu and wasm (only on
 * METALOOP_TEST_BACKEND when it is set).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, Rng, validateSpec, type RunSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend.js';
import { compileRun, computeShard, type EvalShardResult, type TrainShardResult } from '../engine.js';
import { relativeError } from '../kernels/reference.js';
import { randomTensor } from '@metaloop/testing/numerics';
import { sideBySideBackends } from '../testing/backend.js';
import { conv4Config, conv4Forward } from './conv4.js';
import { conv4BatchedForward, createConv4Batched, CONV4_BATCH_ELEMENTS } from './conv4-batched.js';

function spec(pool: 'max' | 'stride', kind: 'maml' | 'fomaml', imageSize = 16): RunSpec {
  return validateSpec({
    name: 'conv4-batched-test',
    seed: 5,
    task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 2, imageSize },
    model: { kind: 'conv4', filters: 4, pool },
    algorithm: { kind, innerSteps: 2, innerLr: 0.3 },
    outer: { shardSize: 3 },
  });
}

/** θ perturbed away from the init (BN scales at 1, biases at 0 are special points). */
function theta(s: RunSpec, seed: number): Float32Array {
  const p = initParams(s).data.slice();
  const rng = new Rng(seed);
  for (let i = 0; i < p.length; i++) p[i] = p[i]! + rng.uniform(-0.1, 0.1);
  return p;
}

describe('task-batched conv4', () => {
  before(async () => {
    await selectBackend({ require: 'cpu' });
  });

  for (const [pool, size] of [['max', 16], ['stride', 16], ['stride', 13], ['max', 19]] as const) {
    test(`forward equals conv4Forward task by task (${pool}, ${size}×${size}, 3 tasks with their own θ)`, () => {
      const s = spec(pool, 'maml', size);
      const config = conv4Config(s);
      const layout = createConv4Batched(s).layout;
      const rng = new Rng(size);
      tf.tidy(() => {
        const T = 3;
        const params = Object.fromEntries(layout.map((t) => [t.name, randomTensor(rng, [T, ...t.shape])]));
        const x = randomTensor(rng, [T, 4, size, size, 1]);
        const batched = conv4BatchedForward(config, params, x);
        assert.deepEqual(batched.shape, [T, 4, 3]);
        for (let t = 0; t < T; t++) {
          const one = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, tf.squeeze(tf.slice(v, [t], [1]), [0])]));
          const ref = conv4Forward(config, one, tf.squeeze(tf.slice(x, [t], [1]), [0]));
          const got = tf.squeeze(tf.slice(batched, [t], [1]), [0]);
          assert.ok(relativeError(got.dataSync(), ref.dataSync()) < 1e-5, `task ${t}`);
        }
      });
    });
  }

  test('chunk size bounds the first-layer activation', () => {
    const s = validateSpec({
      name: 'omniglot-like',
      task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 15, imageSize: 28 },
      model: { kind: 'conv4', filters: 64, pool: 'max' },
      algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 },
    });
    const m = createConv4Batched(s);
    assert.equal(m.maxTaskBatch, Math.floor(CONV4_BATCH_ELEMENTS / (75 * 28 * 28 * 64)));
    assert.equal(compileRun(s).maxTaskBatch, m.maxTaskBatch);
    assert.ok(compileRun(s).batchedInner?.batched);
    assert.equal(compileRun(s).batchByDefault(), false, 'the cpu backend loops Conv4 tasks by default');
  });

  for (const backend of sideBySideBackends()) {
    for (const [pool, kind] of [['max', 'maml'], ['stride', 'maml'], ['max', 'fomaml']] as const) {
      test(`${backend}: a batched shard equals the per-task loop (${kind}, ${pool}, 2 inner steps)`, async () => {
        await selectBackend({ require: backend });
        const s = spec(pool, kind);
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
});

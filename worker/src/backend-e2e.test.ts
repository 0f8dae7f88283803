/**
 * A short end-to-end training run on METALOOP_TEST_BACKEND (cpu by default; the backend runner
 * scripts/test-backends.mjs repeats it on wasm and tensorflow): the backend picked by the worker's
 * own chain from the spec's `workers.backend`, meta-batches split into shards and computed by
 * computeShard (tfjs task-batched and per-task paths: `fused: false`, the MLP fast path is
 * checked in engine.test.ts and fused/*.test.ts), summed and applied by Adam as the coordinator
 * does. The held-out loss after adaptation must fall, and tfjs must hold no more tensors at the
 * end than after the first step.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initParams, validateSpec, type RunSpec, type RunSpecInput } from '@metaloop/shared';
import { selectBackend } from './backend.js';
import { computeShard, type EvalShardResult, type TrainShardResult } from './engine.js';
import { testBackendName } from './testing/backend.js';

const BACKEND = testBackendName();

function spec(over: Pick<RunSpecInput, 'task' | 'model' | 'algorithm'> & { lr: number }): RunSpec {
  return validateSpec({
    name: `e2e-${BACKEND}`,
    seed: 3,
    task: over.task,
    model: over.model,
    algorithm: over.algorithm,
    outer: { metaBatch: 8, shardSize: 4, lr: over.lr },
    workers: { backend: BACKEND },
  });
}

/** Mean post-adaptation query loss over fixed held-out tasks. */
async function evalLoss(s: RunSpec, theta: Float32Array, steps: number): Promise<number> {
  const seeds = Array.from({ length: 16 }, (_, i) => 900_000 + i);
  const r = (await computeShard(s, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: steps }, { fused: false })) as EvalShardResult;
  return r.evalLossSums[steps]! / r.tasks;
}

/** `metaSteps` Adam steps on the mean meta-gradient of 8 tasks (two shards of 4). */
async function train(s: RunSpec, metaSteps: number): Promise<{ before: number; after: number; tensorsAfterFirst: number }> {
  let theta = Float32Array.from(initParams(s).data);
  const m = new Float64Array(theta.length);
  const v = new Float64Array(theta.length);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const before = await evalLoss(s, theta, s.algorithm.innerSteps);
  let tensorsAfterFirst = -1;
  for (let step = 1; step <= metaSteps; step++) {
    const g = new Float64Array(theta.length);
    let tasks = 0;
    for (let shard = 0; shard < s.outer.metaBatch / s.outer.shardSize; shard++) {
      const taskSeeds = Array.from({ length: s.outer.shardSize }, (_, i) => step * 1000 + shard * 100 + i);
      const r = (await computeShard(s, theta, { kind: 'train', taskSeeds }, { batchTasks: shard % 2 === 0, fused: false })) as TrainShardResult;
      assert.ok(r.grad.every(Number.isFinite), `step ${step}: non-finite meta-gradient`);
      for (let i = 0; i < g.length; i++) g[i]! += r.grad[i]!;
      tasks += r.tasks;
    }
    const next = new Float32Array(theta.length);
    for (let i = 0; i < g.length; i++) {
      const gi = g[i]! / tasks;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      next[i] = theta[i]! - (s.outer.lr * (m[i]! / (1 - b1 ** step))) / (Math.sqrt(v[i]! / (1 - b2 ** step)) + eps);
    }
    theta = next;
    if (step === 1) tensorsAfterFirst = tf.memory().numTensors;
  }
  const after = await evalLoss(s, theta, s.algorithm.innerSteps);
  assert.equal(tf.memory().numTensors, tensorsAfterFirst, `${BACKEND}: tensors leaked during training`);
  return { before, after, tensorsAfterFirst };
}

describe(`end-to-end training on the ${BACKEND} backend`, () => {
  before(async () => {
    const s = spec({ task: { family: 'sinusoid', shots: 5, queries: 5 }, model: { kind: 'mlp', hidden: [16, 16] }, algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 }, lr: 0.01 });
    const info = await selectBackend({ require: s.workers.backend });
    assert.equal(info.name, BACKEND);
    assert.equal(tf.getBackend(), BACKEND);
  });

  test('sinusoid, MLP 16-16, second-order MAML: 30 meta-steps lower the held-out loss by 10% or more', async (t) => {
    const s = spec({ task: { family: 'sinusoid', shots: 5, queries: 5 }, model: { kind: 'mlp', hidden: [16, 16] }, algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 }, lr: 0.03 });
    const r = await train(s, 30);
    t.diagnostic(`${BACKEND}: held-out loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)}`);
    assert.ok(r.after < 0.9 * r.before, `held-out loss ${r.before} → ${r.after}`);
  });

  test('synthetic glyphs 3-way 1-shot, Conv4 (4 filters, max-pool), MAML: 8 meta-steps lower the held-out loss', async (t) => {
    const s = spec({
      task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 2, imageSize: 16 },
      model: { kind: 'conv4', filters: 4, pool: 'max' },
      algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 },
      lr: 0.01,
    });
    const r = await train(s, 8);
    t.diagnostic(`${BACKEND}: held-out loss ${r.before.toFixed(4)} → ${r.after.toFixed(4)}`);
    assert.ok(r.after < 0.95 * r.before, `held-out loss ${r.before} → ${r.after}`);
  });
});

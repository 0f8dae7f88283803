import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initParams, Rng, validateSpec, type RunSpec, type RunSpecInput } from '@metaloop/shared';
import { selectBackend } from './backend.js';
import { adapt64, firstOrderGrad64, metaDirectional64, metaLoss64, type Mlp64, mseGrad, mseLoss, type Task64 } from '@metaloop/testing/numerics';
import { testBackendName } from './testing/backend.js';
import { LOSSES } from './algorithms/loss.js';
import { compileRun, computeShard, computeShards, evalRows, MAX_TASK_BATCH, paramTensors, type EvalShardResult, type TrainShardResult } from './engine.js';
import type { Split } from './tasks/types.js';
import { sampleSinusoid } from './tasks/sinusoid.js';

function makeSpec(over: Partial<Pick<RunSpecInput, 'model' | 'algorithm' | 'task'>> = {}): RunSpec {
  return validateSpec({
    name: 'engine-test',
    seed: 7,
    task: { family: 'sinusoid', shots: 5, queries: 6, ...over.task },
    model: { kind: 'mlp', hidden: [8, 8], ...over.model },
    algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01, ...over.algorithm },
  });
}

function ref(spec: RunSpec): Mlp64 {
  if (spec.model.kind !== 'mlp') throw new Error('mlp only');
  return { sizes: [1, ...spec.model.hidden, 1], activation: spec.model.activation };
}

function task64(spec: RunSpec, seed: number): Task64 {
  if (spec.task.family !== 'sinusoid') throw new Error('sinusoid only');
  const t = sampleSinusoid(spec.task, seed);
  return { xs: t.support.x, ys: t.support.y, xq: t.query.x, yq: t.query.y, k: t.support.n, q: t.query.n };
}

/** Random unit direction, seeded. */
function direction(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const d = new Float64Array(n).map(() => rng.normal());
  const norm = Math.hypot(...d);
  return d.map((v) => v / norm);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** Both paths an MLP run can take: the fused host path (default) and tfjs. */
const PATHS = [
  { name: 'fused host path', fused: true },
  { name: 'tfjs', fused: false },
] as const;

async function metaGrad(spec: RunSpec, theta: Float32Array, seed: number, fused = true): Promise<TrainShardResult> {
  const r = await computeShard(spec, theta, { kind: 'train', taskSeeds: [seed] }, { fused });
  assert.equal(r.kind, 'train');
  return r;
}

before(async () => {
  // The worker's own chain, restricted to METALOOP_TEST_BACKEND (cpu by default).
  await selectBackend({ require: testBackendName() });
});

describe('float64 reference', () => {
  test('its backprop matches central finite differences', () => {
    const spec = makeSpec({ model: { kind: 'mlp', hidden: [5, 4], activation: 'tanh' } });
    const m = ref(spec);
    const theta = Float64Array.from(initParams(spec).data);
    const t = task64(spec, 3);
    const g = mseGrad(m, theta, t.xs, t.ys, t.k);
    for (let s = 0; s < 3; s++) {
      const d = direction(theta.length, 100 + s);
      const eps = 1e-6;
      const fd =
        (mseLoss(m, theta.map((v, i) => v + eps * d[i]!), t.xs, t.ys, t.k) -
          mseLoss(m, theta.map((v, i) => v - eps * d[i]!), t.xs, t.ys, t.k)) /
        (2 * eps);
      assert.ok(Math.abs(fd - dot(g, d)) <= 1e-7 * Math.max(1, Math.abs(fd)), `fd ${fd} vs ${dot(g, d)}`);
    }
  });
});

describe('MAML meta-gradient (second order) vs finite differences of the full objective', () => {
  const cases: { name: string; model: RunSpecInput['model']; innerSteps: number; innerLr: number }[] = [
    { name: 'relu, 1 inner step', model: { kind: 'mlp', hidden: [8, 8], activation: 'relu' }, innerSteps: 1, innerLr: 0.05 },
    { name: 'tanh, 3 inner steps', model: { kind: 'mlp', hidden: [6, 5], activation: 'tanh' }, innerSteps: 3, innerLr: 0.1 },
    { name: 'relu 40-40 (paper net), 2 inner steps', model: { kind: 'mlp', hidden: [40, 40], activation: 'relu' }, innerSteps: 2, innerLr: 0.01 },
  ];
  for (const c of cases) {
    for (const path of PATHS) test(`${c.name} (${path.name})`, async () => {
      const spec = makeSpec({ model: c.model, algorithm: { kind: 'maml', innerSteps: c.innerSteps, innerLr: c.innerLr } });
      const m = ref(spec);
      const theta32 = initParams(spec).data;
      const theta = Float64Array.from(theta32);
      for (const seed of [11, 12]) {
        const t = task64(spec, seed);
        const r = await metaGrad(spec, theta32, seed, path.fused);
        assert.ok(Math.abs(r.preLossSum - mseLoss(m, theta, t.xq, t.yq, t.q)) <= 1e-4 * (1 + r.preLossSum));
        assert.ok(Math.abs(r.postLossSum - metaLoss64(m, theta, t, c.innerSteps, c.innerLr)) <= 1e-4 * (1 + r.postLossSum));
        // Directions: 4 random ones plus the gradient itself (largest signal).
        const dirs = [0, 1, 2, 3].map((i) => direction(theta.length, seed * 10 + i));
        const gnorm = Math.hypot(...r.grad);
        dirs.push(Float64Array.from(r.grad, (v) => v / gnorm));
        for (const d of dirs) {
          const fd = metaDirectional64(m, theta, t, c.innerSteps, c.innerLr, d);
          const got = dot(r.grad, d);
          const err = Math.abs(got - fd) / Math.max(Math.abs(fd), 1e-3 * gnorm);
          assert.ok(err < 1e-3, `seed ${seed}: directional derivative ${got} vs finite differences ${fd} (rel err ${err})`);
        }
      }
    });
  }
});

describe('FOMAML', () => {
  for (const path of PATHS) test(`matches the first-order formula and differs from MAML (${path.name})`, async () => {
    const base = { model: { kind: 'mlp' as const, hidden: [8, 8], activation: 'tanh' as const } };
    const maml = makeSpec({ ...base, algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.1 } });
    const fomaml = makeSpec({ ...base, algorithm: { kind: 'fomaml', innerSteps: 2, innerLr: 0.1 } });
    const m = ref(maml);
    const theta32 = initParams(maml).data;
    const theta = Float64Array.from(theta32);
    const seed = 21;
    const t = task64(maml, seed);
    const fo = await metaGrad(fomaml, theta32, seed, path.fused);
    const so = await metaGrad(maml, theta32, seed, path.fused);
    const expected = firstOrderGrad64(m, theta, t, 2, 0.1);
    const enorm = Math.hypot(...expected);
    const diff = Math.hypot(...expected.map((v, i) => v - fo.grad[i]!));
    assert.ok(diff / enorm < 1e-4, `FOMAML vs first-order formula: relative error ${diff / enorm}`);
    const gap = Math.hypot(...so.grad.map((v, i) => v - fo.grad[i]!)) / enorm;
    assert.ok(gap > 1e-2, `MAML and FOMAML meta-gradients should differ (relative gap ${gap})`);
    // Same inner loop, same losses.
    assert.equal(fo.preLossSum, so.preLossSum);
    assert.ok(Math.abs(fo.postLossSum - so.postLossSum) < 1e-6 * (1 + so.postLossSum));
  });
});

describe('computeShard', () => {
  test('train: the shard sum equals the float64 sum of per-task results, in task order, bitwise', async () => {
    const spec = makeSpec();
    const theta = initParams(spec).data;
    const seeds = [101, 102, 103, 104];
    const whole = (await computeShard(spec, theta, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
    const acc = new Float64Array(theta.length);
    let pre = 0;
    let post = 0;
    for (const s of seeds) {
      const r = await metaGrad(spec, theta, s);
      for (let i = 0; i < acc.length; i++) acc[i]! += r.grad[i]!;
      pre += r.preLossSum;
      post += r.postLossSum;
    }
    assert.equal(whole.tasks, 4);
    assert.deepEqual(whole.grad, Float32Array.from(acc));
    assert.equal(whole.preLossSum, pre);
    assert.equal(whole.postLossSum, post);
    const again = (await computeShard(spec, theta, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
    assert.deepEqual(Buffer.from(again.grad.buffer), Buffer.from(whole.grad.buffer));
  });

  test('eval: loss after k = 0..K inner steps matches the float64 reference', async () => {
    const spec = makeSpec({ algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.05 } });
    const m = ref(spec);
    const theta32 = initParams(spec).data;
    const theta = Float64Array.from(theta32);
    const seeds = [201, 202, 203];
    const r = (await computeShard(spec, theta32, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 4 })) as EvalShardResult;
    assert.equal(r.kind, 'eval');
    assert.equal(r.tasks, 3);
    assert.equal(r.evalLossSums.length, 5);
    assert.equal(r.evalAccuracySums, undefined);
    for (let k = 0; k <= 4; k++) {
      const perTask = seeds.map((seed) => {
        const t = task64(spec, seed);
        return mseLoss(m, adapt64(m, theta, t, k, 0.05), t.xq, t.yq, t.q);
      });
      const expected = perTask.reduce((a, b) => a + b, 0);
      const expectedSq = perTask.reduce((a, b) => a + b * b, 0);
      assert.ok(Math.abs(r.evalLossSums[k]! - expected) <= 1e-4 * (1 + expected), `k=${k}: ${r.evalLossSums[k]} vs ${expected}`);
      // Σ of squares over tasks (the coordinator's CI needs the spread, not only the mean).
      assert.ok(Math.abs(r.evalLossSqSums[k]! - expectedSq) <= 2e-4 * (1 + expectedSq), `k=${k}: Σ² ${r.evalLossSqSums[k]} vs ${expectedSq}`);
    }
    // k = 0 is the pre-adaptation loss of the train path.
    const train = (await computeShard(spec, theta32, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
    assert.ok(Math.abs(train.preLossSum - r.evalLossSums[0]!) < 1e-6 * (1 + train.preLossSum));
  });

  test('eval: classification tasks come from the held-out classes (eval.split), with sums of squares', async () => {
    const spec = validateSpec({
      name: 'engine-split',
      seed: 4,
      task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 2, imageSize: 8, classes: { train: 20, val: 10, test: 10 } },
      model: { kind: 'mlp', hidden: [8], activation: 'tanh' },
      algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.3 },
    });
    assert.equal(spec.eval.split, 'test');
    const run = compileRun(spec);
    const theta = initParams(spec).data;
    const seeds = [21, 22, 23, 24];
    /** Per-task [loss_0..2, acc_0..2] rows of tasks drawn explicitly from `split`. */
    const rowsOf = (split: Split): number[][] => {
      const params = paramTensors(run, theta);
      try {
        return seeds.map((seed) => Array.from(evalRows(run, params, [run.family.sample(seed, split)], false, 2)));
      } finally {
        tf.dispose(params);
      }
    };
    const sums = (rows: number[][], sq = false) => rows[0]!.map((_, j) => rows.reduce((a, r) => a + (sq ? r[j]! ** 2 : r[j]!), 0));
    const close = (a: readonly number[], b: readonly number[], what: string) =>
      a.forEach((v, j) => assert.ok(Math.abs(v - b[j]!) <= 1e-5 * (1 + Math.abs(b[j]!)), `${what}[${j}]: ${v} vs ${b[j]}`));
    const held = (await computeShard(spec, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 2 })) as EvalShardResult;
    const test = rowsOf('test');
    close([...held.evalLossSums, ...held.evalAccuracySums!], sums(test), 'test sums');
    close([...held.evalLossSqSums, ...held.evalAccuracySqSums!], sums(test, true), 'test Σ²');
    // Not the meta-train classes: the same seeds on the train split give other tasks.
    const train = sums(rowsOf('train'));
    assert.ok(held.evalLossSums.some((v, k) => Math.abs(v - train[k]!) > 1e-3), 'eval shard must not sample meta-train classes');
    // eval.split: val (and a shard's own split) select the meta-val classes.
    const valSpec = validateSpec({ ...spec, eval: { ...spec.eval, split: 'val' } });
    const val = (await computeShard(valSpec, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 2 })) as EvalShardResult;
    close([...val.evalLossSums, ...val.evalAccuracySums!], sums(rowsOf('val')), 'val sums');
    const viaShard = (await computeShard(spec, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 2, split: 'val' })) as EvalShardResult;
    assert.deepEqual(viaShard.evalLossSums, val.evalLossSums);
  });

  test('task-batched and one-task-at-a-time paths agree (incl. chunks beyond MAX_TASK_BATCH)', async () => {
    for (const algorithm of [
      { kind: 'maml' as const, innerSteps: 2, innerLr: 0.05 },
      { kind: 'fomaml' as const, innerSteps: 1, innerLr: 0.05 },
    ]) {
      const spec = makeSpec({ model: { kind: 'mlp', hidden: [8, 8], activation: 'tanh' }, algorithm });
      const theta = initParams(spec).data;
      const seeds = Array.from({ length: MAX_TASK_BATCH + 5 }, (_, i) => 300 + i);
      const single = (await computeShard(spec, theta, { kind: 'train', taskSeeds: seeds }, { batchTasks: false, fused: false })) as TrainShardResult;
      const evS = (await computeShard(spec, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 2 }, { batchTasks: false, fused: false })) as EvalShardResult;
      // The tfjs batched pass and the fused host path against one task at a time through tfjs.
      for (const fused of [false, true]) {
        const what = `${algorithm.kind} ${fused ? 'fused' : 'batched'}`;
        const batched = (await computeShard(spec, theta, { kind: 'train', taskSeeds: seeds }, { fused })) as TrainShardResult;
        const norm = Math.hypot(...single.grad);
        const diff = Math.hypot(...single.grad.map((v, i) => v - batched.grad[i]!));
        assert.ok(diff / norm < 1e-5, `${what}: relative gap ${diff / norm}`);
        assert.ok(Math.abs(batched.preLossSum - single.preLossSum) < 1e-5 * single.preLossSum, what);
        assert.ok(Math.abs(batched.postLossSum - single.postLossSum) < 1e-5 * single.postLossSum, what);
        const evB = (await computeShard(spec, theta, { kind: 'eval', taskSeeds: seeds, evalInnerSteps: 2 }, { fused })) as EvalShardResult;
        evB.evalLossSums.forEach((v, k) => assert.ok(Math.abs(v - evS.evalLossSums[k]!) < 1e-5 * v, what));
      }
    }
  });

  test('computeShards: one pass over an assignment gives each shard bitwise what computeShard gives it alone', async () => {
    const spec = makeSpec({ model: { kind: 'mlp', hidden: [8, 8], activation: 'tanh' }, algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.05 } });
    const theta = initParams(spec).data;
    const shards = [
      { kind: 'train' as const, taskSeeds: [11, 12, 13] },
      { kind: 'eval' as const, taskSeeds: [21, 22], evalInnerSteps: 2 },
      { kind: 'train' as const, taskSeeds: Array.from({ length: MAX_TASK_BATCH + 2 }, (_, i) => 500 + i) },
      { kind: 'train' as const, taskSeeds: [31] },
    ];
    const bits = (r: unknown) => JSON.stringify(r, (_k, v: unknown) => (v instanceof Float32Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') : v));
    for (const options of [{ fused: true }, { fused: false }, { fused: false, batchTasks: false }]) {
      const before = tf.memory().numTensors;
      let last = 0;
      const together = await computeShards(spec, theta, shards, { ...options, onTask: (done) => (last = done) });
      assert.equal(tf.memory().numTensors, before, `${JSON.stringify(options)}: no tensor left behind`);
      assert.equal(last, MAX_TASK_BATCH + 8, 'onTask counts the tasks of every shard');
      for (let i = 0; i < shards.length; i++) {
        const alone = await computeShard(spec, theta, shards[i]!, options);
        assert.equal(bits(together[i]), bits(alone), `${JSON.stringify(options)} shard ${i}`);
      }
    }
  });

  test('per-task losses equal the scalar losses task by task', () => {
    const rng = new Rng(9);
    const rnd = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal()), shape);
    tf.tidy(() => {
      const logits = rnd([3, 4, 5]);
      const onehot = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], 'int32'), 5).reshape([3, 4, 5]);
      const pred = rnd([3, 6, 1]);
      const target = rnd([3, 6, 1]);
      for (const [loss, a, b] of [
        [LOSSES.xent, logits, onehot],
        [LOSSES.mse, pred, target],
      ] as const) {
        const per = loss.perTask(a, b).arraySync();
        for (let t = 0; t < 3; t++) {
          const one = loss.fn(tf.gather(a, t), tf.gather(b, t)).arraySync();
          assert.ok(Math.abs(per[t]! - one) < 1e-6 * (1 + Math.abs(one)), `${loss.kind} task ${t}: ${per[t]} vs ${one}`);
        }
      }
      const accs = LOSSES.xent.perTaskAccuracy!(logits, onehot).arraySync();
      for (let t = 0; t < 3; t++) assert.equal(accs[t], LOSSES.xent.accuracy!(tf.gather(logits, t), tf.gather(onehot, t)).arraySync());
    });
  });

  test('rejects θ of the wrong size', async () => {
    const spec = makeSpec();
    await assert.rejects(computeShard(spec, new Float32Array(3), { kind: 'train', taskSeeds: [1] }), /layout needs/);
  });

  test('no tensor leaks: numTensors after shard 200 equals the value after shard 10', async () => {
    const spec = makeSpec({ algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.01 } });
    const theta = initParams(spec).data;
    let at10 = -1;
    for (let i = 1; i <= 200; i++) {
      const kind = i % 10 === 0 ? 'eval' : 'train';
      await computeShard(spec, theta, { kind, taskSeeds: [i, i + 1000], evalInnerSteps: 3 }, { batchTasks: i % 3 !== 0, fused: false });
      if (i === 10) at10 = tf.memory().numTensors;
    }
    assert.equal(tf.memory().numTensors, at10);
  });

  test('an aborted signal stops the shard between tasks', async () => {
    const spec = makeSpec();
    const ac = new AbortController();
    const p = computeShard(spec, initParams(spec).data, { kind: 'train', taskSeeds: [1, 2, 3] }, {
      batchTasks: false,
      fused: false,
      signal: ac.signal,
      onTask: (done) => {
        if (done === 1) ac.abort();
      },
    });
    await assert.rejects(p, { name: 'ShardAbortedError', tasksDone: 1 });
  });
});

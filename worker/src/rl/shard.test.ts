/**
 * computeShard on meta-RL specs (engine.ts → ./shard.ts): a shard's sums are the float64 sums, in
 * task order, of its tasks' float32 rows (so they do not depend on how tasks are grouped into
 * shards), eval shards carry Σ R_k, Σ R_k² and Σ (R_k − R_0)², both families and fomaml run, and
 * an aborted signal stops the shard.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { initParams, layoutSize, paramLayout, parseSpec, taskSeed, type RunSpec } from '@metaloop/shared';
import { computeShard, type EvalShardResult, type TrainShardResult } from '../engine.js';
import { ShardAbortedError } from '../errors.js';

const spec = (task: string, kind = 'maml'): RunSpec =>
  parseSpec(`
name: rl-shard
seed: 4
task: ${task}
model: { kind: gaussian-mlp, hidden: [8, 8] }
algorithm: { kind: ${kind}, innerSteps: 1, innerLr: 0.1 }
outer: { metaBatch: 3, shardSize: 3 }
eval: { innerSteps: 2, tasks: 3 }
`);

const NAV = spec('{ family: navigation-2d, episodes: 4, horizon: 15 }');
const seeds = [0, 1, 2].map((i) => taskSeed(4, 'train', 0, i));

describe('computeShard on meta-RL runs', () => {
  test('train: the shard sums its tasks\' rows in task order (grouping-independent), returns in the return fields', async () => {
    const theta = initParams(NAV).data;
    const whole = (await computeShard(NAV, theta, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
    assert.equal(whole.grad.length, layoutSize(paramLayout(NAV)));
    assert.ok(whole.grad.every(Number.isFinite) && whole.grad.some((g) => g !== 0));
    assert.equal(whole.preLossSum, 0);
    assert.ok(whole.preReturnSum! < 0 && whole.postReturnSum! < 0, 'navigation returns are negative');
    const singles = await Promise.all(seeds.map(async (s) => (await computeShard(NAV, theta, { kind: 'train', taskSeeds: [s] })) as TrainShardResult));
    const sum = new Float64Array(whole.grad.length);
    for (const r of singles) r.grad.forEach((g, i) => (sum[i] = sum[i]! + g));
    assert.deepEqual(Array.from(whole.grad), Array.from(Float32Array.from(sum)));
    assert.equal(whole.preReturnSum, singles.reduce((a, r) => a + r.preReturnSum!, 0));
  });

  test('eval: returns after 0..K steps, their squares and the squared paired gains', async () => {
    const theta = initParams(NAV).data;
    const r = (await computeShard(NAV, theta, { kind: 'eval', taskSeeds: seeds })) as EvalShardResult;
    assert.deepEqual(r.evalLossSums, []);
    assert.equal(r.evalReturnSums!.length, 3);
    assert.equal(r.evalGainSqSums![0], 0);
    const singles = await Promise.all(seeds.map(async (s) => ((await computeShard(NAV, theta, { kind: 'eval', taskSeeds: [s] })) as EvalShardResult).evalReturnSums!));
    for (let k = 0; k <= 2; k++) {
      assert.equal(r.evalReturnSums![k], singles.reduce((a, x) => a + x[k]!, 0));
      assert.equal(r.evalReturnSqSums![k], singles.reduce((a, x) => a + x[k]! * x[k]!, 0));
      assert.equal(r.evalGainSqSums![k], singles.reduce((a, x) => a + (x[k]! - x[0]!) ** 2, 0));
    }
  });

  test('pendulum and fomaml compute; the same θ and seeds give the same bits', async () => {
    for (const s of [spec('{ family: pendulum, episodes: 3, horizon: 20 }'), spec('{ family: navigation-2d, episodes: 3, horizon: 10 }', 'fomaml')]) {
      const theta = initParams(s).data;
      const a = (await computeShard(s, theta, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
      const b = (await computeShard(s, theta, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
      assert.deepEqual(Array.from(a.grad), Array.from(b.grad));
      assert.ok(a.grad.every(Number.isFinite));
    }
  });

  test('an aborted signal stops the shard between tasks', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(computeShard(NAV, initParams(NAV).data, { kind: 'train', taskSeeds: seeds }, { signal: ac.signal }), ShardAbortedError);
  });
});

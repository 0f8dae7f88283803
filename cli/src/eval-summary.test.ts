/**
 * The evaluation protocol on the coordinator side: per-task sums and sums of squares from eval
 * shards, added in shard order, give the mean accuracy / loss and the 95% CI (1.96·s/√n) that a
 * direct computation over the per-task values gives; summaryJson reports them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metaloop, Rng } from '@metaloop/shared';
import { ci95FromSums, decodeResult, evalSummary, isChecked, ResultValidator, StepCollector, type Verdict } from '@metaloop/coordinator/internal';
import { meanCi } from './eval.js';
import { summaryJson } from './format.js';

const EVAL = metaloop.ShardKind.SHARD_KIND_EVAL;
const K = 10;

/** Per-task [loss_0..K] and [acc_0..K] of `n` tasks (seeded). */
function perTask(n: number, seed: number): { loss: number[][]; acc: number[][] } {
  const rng = new Rng(seed);
  const loss: number[][] = [];
  const acc: number[][] = [];
  for (let i = 0; i < n; i++) {
    loss.push(Array.from({ length: K + 1 }, (_, k) => (1.6 * (1 + rng.uniform(-0.3, 0.3))) / (1 + k)));
    acc.push(Array.from({ length: K + 1 }, (_, k) => Math.round(rng.uniform(0, 1) * (0.3 + k / 20) * 15) / 15));
  }
  return { loss, acc };
}

const col = (rows: number[][], k: number) => rows.map((r) => r[k]!);
const sum = (xs: number[], sq = false) => xs.reduce((a, x) => a + (sq ? x * x : x), 0);

function shardResult(shard: number, rows: { loss: number[][]; acc: number[][] }, classify: boolean): metaloop.ShardResult {
  const ks = Array.from({ length: K + 1 }, (_, k) => k);
  const bytes = metaloop.ShardResult.encode({
    runId: 'r-1',
    step: 4,
    shard,
    paramVersion: 4,
    kind: EVAL,
    tasks: rows.loss.length,
    evalLossSums: ks.map((k) => sum(col(rows.loss, k))),
    evalLossSqSums: ks.map((k) => sum(col(rows.loss, k), true)),
    ...(classify
      ? { evalAccuracySums: ks.map((k) => sum(col(rows.acc, k))), evalAccuracySqSums: ks.map((k) => sum(col(rows.acc, k), true)) }
      : {}),
  }).finish();
  const d = decodeResult(bytes, 'r-1');
  assert.ok(d.ok);
  return d.result;
}

/** An evaluation's collector with the run's validator in front (the coordinator's intake). */
function evalCollector(sizes: number[], evalInnerSteps: number): StepCollector & { offer(r: metaloop.ShardResult): Verdict } {
  const c = new StepCollector({ runId: 'r-1', step: 4, paramVersion: 4, kind: 'eval', shardTasks: sizes, layout: [], evalInnerSteps });
  const validator = new ResultValidator({ runId: 'r-1', steps: 10, trainShards: [], evalShards: sizes, layout: [], evalInnerSteps });
  return Object.assign(c, {
    offer: (r: metaloop.ShardResult): Verdict => {
      const checked = validator.check(r);
      return isChecked(checked) ? c.place(checked) : { accepted: false, reason: checked.reason, detail: checked.detail };
    },
  });
}

function collect(tasks: { loss: number[][]; acc: number[][] }, shardSize: number, classify: boolean): StepCollector {
  const sizes: number[] = [];
  for (let s = 0; s < tasks.loss.length; s += shardSize) sizes.push(Math.min(shardSize, tasks.loss.length - s));
  const c = evalCollector(sizes, K);
  // Arrival order reversed: the sums are still taken in shard order.
  for (let i = sizes.length - 1; i >= 0; i--) {
    const part = { loss: tasks.loss.slice(i * shardSize, i * shardSize + sizes[i]!), acc: tasks.acc.slice(i * shardSize, i * shardSize + sizes[i]!) };
    const v = c.offer(shardResult(i, part, classify));
    assert.ok(v.accepted, JSON.stringify(v));
  }
  return c;
}

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * (1 + Math.abs(b)), `${what}: ${a} vs ${b}`);

describe('evaluation summary: mean ± 95% CI', () => {
  it('ci95FromSums equals 1.96·s/√n of the values', () => {
    const xs = [0.2, 0.6, 0.4, 1, 0.8, 0.4];
    near(ci95FromSums(sum(xs), sum(xs, true), xs.length), meanCi(xs).ci95, 'ci');
    assert.equal(ci95FromSums(0.5, 0.25, 1), 0);
    assert.equal(ci95FromSums(3, 3, 3), 0, 'no spread, no negative variance');
  });

  it('classification: accuracy and its CI after 1 and K steps from shard sums (600 tasks)', () => {
    const tasks = perTask(600, 1);
    const c = collect(tasks, 7, true);
    const e = evalSummary(4, 600, c.evalSums());
    assert.deepEqual(e.innerSteps, [1, K]);
    [1, K].forEach((k, i) => {
      const acc = meanCi(col(tasks.acc, k));
      const loss = meanCi(col(tasks.loss, k));
      near(e.accuracy![i]!, acc.mean, `accuracy after ${k}`);
      near(e.ci95![i]!, acc.ci95, `ci95 after ${k}`);
      near(e.postLoss![i]!, loss.mean, `loss after ${k}`);
      near(e.lossCi95![i]!, loss.ci95, `loss ci after ${k}`);
    });
    near(e.preLossCi95!, meanCi(col(tasks.loss, 0)).ci95, 'pre-loss ci');
    const json = summaryJson({ runId: 'r-1', state: metaloop.RunState.RUN_STATE_SUCCEEDED, step: 4, lastEval: e });
    const ev = json.eval as Record<string, number[]>;
    assert.deepEqual(ev.accuracy, e.accuracy);
    assert.deepEqual(ev.ci95, e.ci95);
    assert.equal(ev.accuracy!.length, 2);
    assert.deepEqual(ev.postLoss, e.postLoss);
  });

  it('regression: ci95 is the CI of the post-adaptation loss; no accuracy', () => {
    const tasks = perTask(100, 2);
    const e = evalSummary(4, 100, collect(tasks, 5, false).evalSums());
    assert.equal(e.accuracy, undefined);
    [1, K].forEach((k, i) => near(e.ci95![i]!, meanCi(col(tasks.loss, k)).ci95, `ci95 after ${k}`));
    const ev = summaryJson({ runId: 'r-1', state: metaloop.RunState.RUN_STATE_SUCCEEDED, lastEval: e }).eval as Record<string, unknown>;
    assert.equal(ev.accuracy, undefined);
    assert.deepEqual(ev.ci95, e.ci95);
  });

  it('rejects eval extras of the wrong length or non-finite; no CI when a shard lacks sums of squares', () => {
    const c = evalCollector([1, 1], 1);
    const r = (shard: number, extra: metaloop.IShardResult) =>
      metaloop.ShardResult.decode(metaloop.ShardResult.encode({ runId: 'r-1', step: 4, shard, paramVersion: 4, kind: EVAL, tasks: 1, evalLossSums: [1, 0.5], ...extra }).finish());
    const short = c.offer(r(0, { evalLossSqSums: [1] }));
    assert.equal(!short.accepted && short.reason, 'wrong_shape');
    const nan = c.offer(r(0, { evalAccuracySums: [0.2, Number.NaN] }));
    assert.equal(!nan.accepted && nan.reason, 'non_finite');
    assert.ok(c.offer(r(0, { evalLossSqSums: [1, 0.25] })).accepted);
    assert.ok(c.offer(r(1, {})).accepted, 'a worker without the new fields is still accepted');
    const e = evalSummary(4, 2, c.evalSums());
    assert.equal(e.ci95, undefined);
    assert.deepEqual(e.postLoss, [0.5]);
  });
});

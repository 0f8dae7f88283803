/**
 * Meta-RL results in the coordinator: validation of the return fields (validate.ts), their sums in
 * shard order (aggregator.ts), the evaluation summary with the paired gain's 95% CI (run-state.ts,
 * checked against the per-task differences computed directly), and the history's return columns
 * (history.ts) through a resume's truncation and a JSON round trip.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metaloop, paramLayout, parseSpec, toBundle } from '@metaloop/shared';
import { StepCollector } from './aggregator.js';
import { RunHistory } from './history.js';
import { evalSummary } from './run-state.js';
import type { Verdict } from './result.js';
import { isChecked, resultShape, ResultValidator, type Rejected } from './validate.js';

const SPEC = parseSpec(`
name: nav
task: { family: navigation-2d, episodes: 2, horizon: 5 }
model: { kind: gaussian-mlp, hidden: [3] }
algorithm: { kind: maml }
outer: { metaBatch: 4, shardSize: 2, steps: 10 }
eval: { tasks: 4, innerSteps: 2 }
`);
const layout = paramLayout(SPEC);
const EVAL = metaloop.ShardKind.SHARD_KIND_EVAL;
const TRAIN = metaloop.ShardKind.SHARD_KIND_TRAIN;

/** Per-task returns after k = 0, 1, 2 steps of the 4 evaluation tasks (2 per shard). */
const R = [
  [-40, -35, -31],
  [-52, -44, -45],
  [-38, -30, -22],
  [-61, -50, -47],
];

function evalResult(shard: number, extra: metaloop.IShardResult = {}): metaloop.ShardResult {
  const rows = R.slice(shard * 2, shard * 2 + 2);
  const sum = (f: (r: number[], k: number) => number) => [0, 1, 2].map((k) => rows.reduce((a, r) => a + f(r, k), 0));
  return metaloop.ShardResult.decode(
    metaloop.ShardResult.encode({
      runId: 'r',
      step: 3,
      shard,
      paramVersion: 3,
      kind: EVAL,
      tasks: 2,
      evalReturnSums: sum((r, k) => r[k]!),
      evalReturnSqSums: sum((r, k) => r[k]! ** 2),
      evalGainSqSums: sum((r, k) => (r[k]! - r[0]!) ** 2),
      ...extra,
    }).finish(),
  );
}

describe('meta-RL results in the coordinator', () => {
  const validator = new ResultValidator(resultShape('r', SPEC, layout));
  /** The reason a result is refused, undefined when it passes. */
  const refusal = (r: metaloop.ShardResult): Rejected | undefined => {
    const checked = validator.check(r);
    return isChecked(checked) ? undefined : checked;
  };
  /** Validate, then place: the coordinator's intake of one round. */
  const offer = (c: StepCollector, r: metaloop.ShardResult): Verdict => {
    const checked = validator.check(r);
    return isChecked(checked) ? c.place(checked) : { accepted: false, reason: checked.reason, detail: checked.detail };
  };

  it('validates returns: an eval result without them, or with NaN, is rejected naming the field', () => {
    assert.equal(refusal(evalResult(0)), undefined);
    const lossOnly = refusal(evalResult(0, { evalReturnSums: [], evalLossSums: [1, 2, 3] }));
    assert.equal(lossOnly?.reason, 'wrong_shape');
    assert.match(lossOnly?.detail ?? '', /0 returns, expected 3/);
    assert.equal(refusal(evalResult(1, { evalGainSqSums: [0, Number.NaN, 1] }))?.reason, 'non_finite');
    assert.equal(refusal(evalResult(1, { evalGainSqSums: [0, 1] }))?.reason, 'wrong_shape');
    const train = metaloop.ShardResult.create({
      runId: 'r', step: 1, shard: 0, paramVersion: 1, kind: TRAIN, tasks: 2,
      grad: toBundle({ layout, data: new Float32Array(layout.reduce((a, t) => a + t.shape.reduce((p, q) => p * q, 1), 0)) }),
      preReturnSum: Number.POSITIVE_INFINITY,
    });
    assert.equal(refusal(train)?.reason, 'non_finite');
  });

  it('sums returns in shard order; the summary reports every k and the paired gain CI over tasks', () => {
    const c = new StepCollector({ runId: 'r', step: 3, paramVersion: 3, kind: 'eval', shardTasks: [2, 2], layout, evalInnerSteps: 2, returns: true });
    assert.ok(offer(c, evalResult(1)).accepted);
    assert.ok(offer(c, evalResult(0)).accepted);
    const s = evalSummary(3, 4, c.evalSums());
    assert.deepEqual(s.innerSteps, [1, 2]);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ci = (xs: number[]) => {
      const m = mean(xs);
      return (1.96 * Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1))) / Math.sqrt(xs.length);
    };
    assert.equal(s.preReturn, mean(R.map((r) => r[0]!)));
    for (const k of [1, 2]) {
      const gains = R.map((r) => r[k]! - r[0]!);
      assert.ok(Math.abs(s.postReturn![k - 1]! - mean(R.map((r) => r[k]!))) < 1e-12);
      assert.ok(Math.abs(s.gain![k - 1]! - mean(gains)) < 1e-12);
      assert.ok(Math.abs(s.gainCi95![k - 1]! - ci(gains)) < 1e-9, `gain CI after ${k}: ${s.gainCi95![k - 1]} vs ${ci(gains)}`);
      assert.ok(Math.abs(s.returnCi95![k - 1]! - ci(R.map((r) => r[k]!))) < 1e-9);
    }
    // The paired CI is far tighter than the CI of either return (tasks differ much more than their gains).
    assert.ok(s.gainCi95![0]! < s.returnCi95![0]! / 2);
    assert.deepEqual(s.postLoss, undefined, 'no loss figures in a meta-RL summary');
  });

  it('the history keeps return columns through truncation and JSON', () => {
    const h = new RunHistory('r');
    for (let t = 1; t <= 4; t++) h.addStep(t, 0, 0, 1000 * t, { pre: -40 - t, post: -30 - t });
    h.addEval({ step: 4, tasks: 4, innerSteps: [1], preReturn: -45, postReturn: [-33], gain: [12], gainCi95: [1.5], returnCi95: [3] }, 5000);
    h.truncate(2);
    h.addStep(3, 0, 0, 6000, { pre: -50, post: -20 });
    const j = RunHistory.decode(h.encode()).toJson();
    assert.deepEqual(j.steps, [1, 2, 3]);
    assert.deepEqual(j.preReturn, [-41, -42, -50]);
    assert.deepEqual(j.postReturn, [-31, -32, -20]);
    assert.equal(j.evals.length, 0, 'the evaluation after the checkpoint is dropped');
    const supervised = new RunHistory('s');
    supervised.addStep(1, 2, 1);
    assert.equal('preReturn' in supervised.toJson(), false);
  });
});

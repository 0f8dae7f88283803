import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metaloop, Rng, shardSizes, toBundle, type TensorSpec } from '@metaloop/shared';
import { StepCollector } from './aggregator.js';
import { RejectCounter, type ShardKindName, type Verdict } from './result.js';
import { decodeResult, isChecked, ResultValidator } from './validate.js';

const layout: TensorSpec[] = [
  { name: 'l0.w', shape: [1, 3] },
  { name: 'l0.b', shape: [3] },
];
const N = 6;
const TRAIN = metaloop.ShardKind.SHARD_KIND_TRAIN;
const EVAL = metaloop.ShardKind.SHARD_KIND_EVAL;

/** A step collector and the run's validator in front of it: the coordinator's intake of one round. */
function collector(kind: ShardKindName = 'train', shards = [5, 5, 5, 5, 5]): StepCollector & { offer(r: metaloop.ShardResult): Verdict } {
  const c = new StepCollector({ runId: 'r-1', step: 7, paramVersion: 7, kind, shardTasks: shards, layout, evalInnerSteps: 2 });
  const validator = new ResultValidator({
    runId: 'r-1',
    steps: 100,
    trainShards: shards,
    evalShards: shards,
    layout,
    evalInnerSteps: 2,
    returns: false,
  });
  return Object.assign(c, {
    offer(r: metaloop.ShardResult): Verdict {
      const checked = validator.check(r);
      return isChecked(checked) ? c.place(checked) : { accepted: false, reason: checked.reason, detail: checked.detail };
    },
  });
}

function result(shard: number, grad: Float32Array, extra: metaloop.IShardResult = {}): metaloop.ShardResult {
  // Round-trip through the wire format, as the coordinator receives it.
  const bytes = metaloop.ShardResult.encode({
    runId: 'r-1',
    step: 7,
    shard,
    paramVersion: 7,
    kind: TRAIN,
    tasks: 5,
    grad: toBundle({ layout, data: grad }),
    preLossSum: 10 + shard,
    postLossSum: 5 + shard,
    workerId: `w${shard % 2}`,
    ...extra,
  }).finish();
  const d = decodeResult(bytes, 'r-1');
  assert.ok(d.ok);
  return d.result;
}

/** Gradients whose float sum depends on the order of addition. */
function awkwardGrads(): Float32Array[] {
  const rng = new Rng(5);
  const big = [1e8, 3.5, -1e8, 1e-3, 7e7];
  return big.map((b) => Float32Array.from({ length: N }, () => b * (1 + rng.next())));
}

function inShardOrder(grads: Float32Array[]): Float64Array {
  const s = new Float64Array(N);
  for (const g of grads) for (let i = 0; i < N; i++) s[i] = s[i]! + g[i]!;
  return s;
}

describe('StepCollector', () => {
  it('sums in shard order whatever the arrival order', () => {
    const grads = awkwardGrads();
    const expected = inShardOrder(grads);
    const orders = [
      [0, 1, 2, 3, 4],
      [4, 3, 2, 1, 0],
      [2, 0, 4, 1, 3],
      [3, 4, 0, 2, 1],
    ];
    // The arrival-order sum really differs for some order (else this test would prove nothing).
    const arrival = (order: number[]) => inShardOrder(order.map((i) => grads[i]!));
    assert.ok(orders.some((o) => Buffer.compare(Buffer.from(arrival(o).buffer), Buffer.from(expected.buffer)) !== 0));
    for (const order of orders) {
      const c = collector();
      for (const i of order) assert.deepEqual(c.offer(result(i, grads[i]!)), { accepted: true, shard: i });
      assert.ok(c.complete);
      assert.deepEqual(Buffer.from(c.gradientSum().buffer), Buffer.from(expected.buffer), `order ${order.join(',')}`);
      assert.deepEqual(c.lossSums(), { pre: 10 + 11 + 12 + 13 + 14, post: 5 + 6 + 7 + 8 + 9 });
    }
  });

  it('accepts exactly one result per shard and reports what is missing', () => {
    const c = collector();
    const g = new Float32Array(N).fill(1);
    c.offer(result(1, g));
    c.offer(result(3, g));
    assert.deepEqual(c.missing(), [0, 2, 4]);
    const dup = c.offer(result(1, new Float32Array(N).fill(2)));
    assert.equal(dup.accepted, false);
    assert.equal(!dup.accepted && dup.reason, 'duplicate');
    assert.throws(() => c.gradientSum(), /missing shards 0, 2, 4/);
  });

  it('sums right although the received bytes are reused once a result is placed (early ones are copied)', () => {
    const grads = awkwardGrads();
    const expected = inShardOrder(grads);
    for (const order of [
      [0, 1, 2, 3, 4],
      [4, 2, 0, 3, 1],
    ]) {
      const c = collector();
      for (const i of order) {
        // The bytes a transport hands over, overwritten as soon as the result has been placed.
        const bytes = metaloop.ShardResult.encode({ ...result(i, grads[i]!) }).finish();
        const r = metaloop.ShardResult.decode(bytes);
        assert.deepEqual(c.offer(r), { accepted: true, shard: i });
        r.grad!.data!.fill(0xff);
        bytes.fill(0xff);
      }
      assert.deepEqual(Buffer.from(c.gradientSum().buffer), Buffer.from(expected.buffer), `order ${order.join(',')}`);
    }
  });

  it('rejects with a reason: stale, unknown run, worker error, non-finite, wrong shape', () => {
    const g = new Float32Array(N).fill(1);
    const cases: [string, metaloop.ShardResult][] = [
      ['stale', result(0, g, { step: 8 })],
      ['stale', result(0, g, { paramVersion: 6 })],
      ['stale', result(0, g, { kind: EVAL, evalLossSums: [1, 1, 1] })],
      ['unknown_run', metaloop.ShardResult.create({ ...result(0, g), runId: 'other-1' })],
      ['worker_error', result(0, g, { error: 'out of memory' })],
      ['non_finite', result(0, Float32Array.from(g).fill(Number.NaN, 2, 3))],
      ['non_finite', result(0, Float32Array.from(g).fill(Number.POSITIVE_INFINITY, 0, 1))],
      ['non_finite', result(0, g, { postLossSum: Number.NaN })],
      ['wrong_shape', result(0, g, { tasks: 4 })],
      ['wrong_shape', result(9, g)],
      ['wrong_shape', result(0, g, { grad: toBundle({ layout: [{ name: 'l0.w', shape: [6] }], data: g }) })],
      ['wrong_shape', result(0, g, { grad: { tensors: layout.map((t) => ({ name: t.name, shape: [...t.shape] })), data: new Uint8Array(7) } })],
      ['wrong_shape', result(0, g, { grad: null })],
    ];
    const counter = new RejectCounter();
    for (const [reason, r] of cases) {
      const c = collector();
      const v = c.offer(r);
      assert.equal(v.accepted, false, reason);
      assert.equal(!v.accepted && v.reason, reason, !v.accepted ? v.detail : '');
      if (!v.accepted) counter.add(v.reason);
      assert.deepEqual(c.missing(), [0, 1, 2, 3, 4], 'a rejected result is not counted');
    }
    assert.equal(counter.get('wrong_shape'), 5);
    assert.equal(counter.get('non_finite'), 3);
    assert.equal(counter.total(), cases.length);
  });

  it('counts undecodable bytes as malformed', () => {
    assert.equal(decodeResult(new Uint8Array([0xff, 0xff, 0xff, 0xff])).ok, false);
    const wrongSubject = metaloop.ShardResult.encode({ runId: 'a-1', step: 1 }).finish();
    assert.equal(decodeResult(wrongSubject, 'b-1').ok, false);
    assert.equal(decodeResult(metaloop.ShardResult.encode({ step: 1 }).finish()).ok, false);
  });

  it('sums eval losses in shard order and checks their count', () => {
    const c = collector('eval', [2, 2, 1]);
    const ev = (shard: number, sums: number[], tasks = shard === 2 ? 1 : 2) =>
      result(shard, new Float32Array(N), { kind: EVAL, tasks, grad: null, evalLossSums: sums });
    const bad = c.offer(ev(0, [1, 2]));
    assert.equal(!bad.accepted && bad.reason, 'wrong_shape');
    assert.equal(c.offer(ev(2, [0.5, 0.25, 0.125])).accepted, true);
    assert.equal(c.offer(ev(0, [4, 2, 1])).accepted, true);
    assert.equal(!c.offer(ev(1, [4, Number.NaN, 1])).accepted, true);
    assert.equal(c.offer(ev(1, [2, 1, 0.5])).accepted, true);
    assert.deepEqual([...c.evalSums().loss], [6.5, 3.25, 1.625]);
  });
});

describe('shardSizes', () => {
  it('cuts a meta-batch into fixed-size shards, the last one smaller', () => {
    assert.deepEqual(shardSizes(25, 5), [5, 5, 5, 5, 5]);
    assert.deepEqual(shardSizes(7, 3), [3, 3, 1]);
    assert.deepEqual(shardSizes(1, 5), [1]);
  });
});

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { layoutSize, metaloop, paramLayout, parseSpec, toBundle } from '@metaloop/shared';
import { startInProcCluster, type ClusterWorkerOptions } from '@metaloop/testing';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';
import { CoordinatorObservability } from './observe.js';
import { REJECT_REASONS } from './result.js';

const SPEC = (steps: number) => `
name: once
seed: 3
task: { family: sinusoid }
model: { kind: mlp, hidden: [4] }
algorithm: { kind: maml }
outer: { optimizer: adam, lr: 0.05, metaBatch: 6, shardSize: 3, steps: ${steps} }
eval: { every: 0, tasks: 3, innerSteps: 1 }
checkpoint: { every: 0 }
`;

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * Wraps ShardResult.decode so that every decoded result counts the reads of its gradient's bytes:
 * fromBundle reads `grad.data` once per decode, so the count is how often the gradient was decoded
 * (and the NaN scan only ever follows a decode).
 */
function countGradientDecodes(): { reads: number[]; restore: () => void } {
  const original = metaloop.ShardResult.decode.bind(metaloop.ShardResult);
  const reads: number[] = [];
  metaloop.ShardResult.decode = ((reader: Uint8Array, length?: number) => {
    const r = original(reader, length);
    if (r.grad) {
      const index = reads.push(0) - 1;
      const data = r.grad.data;
      Object.defineProperty(r.grad, 'data', {
        get: () => {
          reads[index] = reads[index]! + 1;
          return data;
        },
      });
    }
    return r;
  });
  return { reads, restore: () => (metaloop.ShardResult.decode = original) };
}

/** A coordinator (queue dispatch: QuadraticWorker takes shards from the work queue) and `workers` on one in-process bus. */
async function coordinator(metrics?: CoordinatorObservability, workers: ClusterWorkerOptions[] = []) {
  const cluster = await startInProcCluster(
    (transport) => Coordinator.create({ transport, recordIntervalMs: 100, dispatch: 'queue', ...(metrics ? { metrics } : {}) }),
    workers,
  );
  closers.push(cluster.close);
  return { bus: cluster.bus, c: cluster.coordinator, client: new ApiClient({ transport: cluster.bus.connect(), timeoutMs: 2000 }) };
}

describe('one validation pass a result', () => {
  it('decodes (and scans) every gradient once, NaN results included', async () => {
    const counted = countGradientDecodes();
    try {
      let nans = 0;
      const { c, client } = await coordinator(undefined, [{ fault: (s, delivery) => (s.shard === 1 && delivery === 1 && nans++ < 2 ? 'nan' : undefined) }]);
      const rec = await client.submit(SPEC(3), 'once.yaml');
      const done = await client.waitFor(rec.runId, { pollMs: 20 });
      assert.equal(done.state, metaloop.RunState.RUN_STATE_SUCCEEDED);
      assert.ok(c.rejects.get('non_finite') >= 1, 'the NaN gradient was rejected');
      assert.ok(counted.reads.length >= 6, `${counted.reads.length} train results decoded`);
      assert.deepEqual(counted.reads.filter((n) => n !== 1), [], `gradient reads per result: ${counted.reads.join(',')}`);
    } finally {
      counted.restore();
    }
  });

  it('still rejects for every reason, with the run and reason labels', async () => {
    const metrics = new CoordinatorObservability();
    const { bus, c, client } = await coordinator(metrics);
    // No worker: step 0's shards wait in the queue while we answer them by hand.
    const rec = await client.submit(SPEC(2), 'once.yaml');
    const runId = rec.runId;
    const spec = parseSpec(SPEC(2), 'once.yaml');
    const layout = paramLayout(spec);
    const n = layoutSize(layout);
    const grad = (fill: number) => toBundle({ layout, data: new Float32Array(n).fill(fill) });
    const base = { runId, step: 0, paramVersion: 0, kind: metaloop.ShardKind.SHARD_KIND_TRAIN, tasks: 3, workerId: 'hand', preLossSum: 1, postLossSum: 1 };
    const send = (r: metaloop.IShardResult | Uint8Array, id: string, subjectRun = runId) =>
      bus.publishResult(subjectRun, id, r instanceof Uint8Array ? r : metaloop.ShardResult.encode(r).finish());
    await send({ ...base, shard: 0, grad: grad(0.5) }, 'ok'); // accepted
    await send({ ...base, shard: 0, grad: grad(0.5) }, 'dup'); // duplicate
    await send({ ...base, shard: 1, grad: grad(Number.NaN) }, 'nan'); // non_finite
    await send({ ...base, shard: 7, grad: grad(0.5) }, 'range'); // wrong_shape
    await send({ ...base, shard: 1, error: 'out of memory' }, 'err'); // worker_error
    await send({ ...base, shard: 1, error: 'my copy of /data/x differs', errorReason: 'data' }, 'refused'); // data_refused
    await send({ ...base, step: 1, paramVersion: 1, shard: 1, grad: grad(0.5) }, 'ahead'); // stale
    await send({ ...base, runId: 'nobody-000000', shard: 1, grad: grad(0.5) }, 'unknown', 'nobody-000000'); // unknown_run
    await send(new Uint8Array([0xff, 0xff, 0xff]), 'garbage'); // malformed
    const deadline = Date.now() + 5000;
    while (c.rejects.total() < REJECT_REASONS.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const reason of REJECT_REASONS) assert.equal(c.rejects.get(reason), 1, `${reason}: ${JSON.stringify(c.rejects.toJSON())}`);
    const text = await metrics.registry.metrics();
    for (const reason of ['duplicate', 'non_finite', 'wrong_shape', 'worker_error', 'data_refused', 'stale', 'malformed']) {
      assert.match(text, new RegExp(`^metaloop_results_rejected_total\\{run="${runId}",reason="${reason}"\\} 1$`, 'm'));
    }
    assert.match(text, /^metaloop_results_rejected_total\{run="_unknown",reason="unknown_run"\} 1$/m);
  });
});

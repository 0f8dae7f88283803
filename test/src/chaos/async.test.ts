/**
 * Asynchronous mode (`workers.staleness: 2`) across processes: a nats-server, a coordinator
 * process and two worker processes, one of them a straggler (every shard held 1.5 s), on direct
 * dispatch. The coordinator issues up to two more steps on the current θ while a step waits, so
 * results computed on θ_{u−k}, k ≤ 2, are applied as their step completes; the straggler's shards
 * get speculative copies on the fast worker, and its own results, coming after their step was
 * applied, are rejected and counted. What async mode promises: every step applied once with
 * exactly one result per shard (none lost, none doubled) and staleness within the bound — not
 * bitwise θ (which results are stale depends on timing).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient } from '@metaloop/client';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { metricValue, scrape, sinusoidSets, startWorker, trainToEnd } from '@metaloop/testing/cluster';

const STEPS = 20;
const STALENESS = 2;
/** Train shards per step (meta-batch 10 in shards of 5) and eval shards (10 held-out tasks). */
const SHARDS = 2;
const EVAL_SHARDS = 2;
const STRAGGLER_MS = 1500;

describe('async mode across processes: bounded staleness with a straggler', { timeout: 240_000 }, () => {
  process.env.METALOOP_DISPATCH = 'direct';
  const cluster = new ChaosCluster({
    // Copies of a straggling shard after 500 ms (3 × the median shard time is far less).
    coordinator: { args: ['--speculative-factor', '3', '--speculative-min-ms', '500'] },
    startWorker: (n, url) => startWorker(`a${n}`, url, n === 1 ? { slowShardMs: STRAGGLER_MS } : {}),
  });
  let client: ApiClient;
  before(async () => {
    await cluster.start(2);
    client = cluster.client;
  });
  after(() => cluster.close());

  it('applies results within the bound, rejects and counts the late ones, loses and doubles none', async () => {
    const rec = await trainToEnd(client, sinusoidSets(STEPS, [`workers.staleness=${STALENESS}`]), STEPS, cluster.describeProcs, undefined, 200_000);
    assert.ok(rec.stalenessMax <= STALENESS, `staleness ${rec.stalenessMax} beyond the bound ${STALENESS}`);
    assert.ok(rec.stalenessMean > 0, `some results were computed on an older θ (async really happened): mean ${rec.stalenessMean}`);
    assert.ok(rec.speculative > 0, `the straggler's shards were copied: ${rec.speculative}`);
    // The straggler's results come after their step was applied (a copy won): rejected, by reason.
    const late = (rec.rejected.duplicate ?? 0) + (rec.rejected.stale ?? 0);
    assert.ok(late > 0, `late results rejected and counted: ${JSON.stringify(rec.rejected)}`);
    const metrics = await scrape(cluster.metricsPort);
    const rejected = ['duplicate', 'stale'].reduce((n, reason) => n + metricValue(metrics, 'metaloop_results_rejected_total', { run: rec.runId, reason }), 0);
    assert.equal(rejected, late, '/metrics counts the same rejections as the run record');
    // Exactly one accepted result per shard of every step and of the final evaluation.
    assert.equal(metricValue(metrics, 'metaloop_shards_completed_total', { run: rec.runId }), STEPS * SHARDS + EVAL_SHARDS, 'none lost, none doubled');
    assert.match(rec.paramsSha256, /^[0-9a-f]{64}$/);
  });
});

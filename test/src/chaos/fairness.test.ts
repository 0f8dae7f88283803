/**
 * Issue 5, many runs: two runs submitted together share 2 saturated worker processes (each shard
 * held 100 ms) by priority. With priorities 1 and 3 and 4 shards in flight, the priority-3 run gets
 * most of the workers: it ends first while the other has done clearly fewer steps. Pause holds a
 * run within a step; resume continues it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metaloop, startNatsServer, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/coordinator';
import { apiClient, Proc, sinusoidSets, sleep, startCoordinator, startWorker, submitRun, waitFor, waitRunEnd, waitWorkers } from '../support/cluster.js';

const STEPS = 24;
// 5 shards of 2 tasks per step.
const SETS = sinusoidSets(STEPS, ['outer.shardSize=2', 'checkpoint.every=0']);

describe('chaos: fair share of the workers by priority', { timeout: 300_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  let api: { client: ApiClient; close: () => Promise<void> };
  const describeProcs = () => procs.map((p) => p.tail(10)).join('\n');

  before(async () => {
    nats = await startNatsServer();
    api = await apiClient(nats.url);
    const c = await startCoordinator('coordinator', nats.url, { leaseMs: 10_000, args: ['--max-in-flight', '4', '--speculative-factor', '0'] });
    procs.push(c.proc);
    for (const id of ['f1', 'f2']) procs.push(startWorker(id, nats.url, { slowShardMs: 100, env: { METALOOP_LOG_LEVEL: 'warn' } }));
  });

  after(async () => {
    await api?.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it('the priority-3 run gets about three times the workers of the priority-1 run', async (t) => {
    const client = api.client;
    await waitWorkers(client, 2, 60_000, describeProcs);
    const low = await submitRun(client, SETS, 1);
    const high = await submitRun(client, SETS, 3);
    const highEnd = await waitRunEnd(client, high, 240_000, describeProcs);
    const lowThen = await client.status(low);
    assert.equal(highEnd.state, metaloop.RunState.RUN_STATE_SUCCEEDED, highEnd.error);
    assert.equal(highEnd.priority, 3);
    t.diagnostic(`priority 3 finished ${STEPS} steps while priority 1 did ${lowThen.step}`);
    assert.ok(lowThen.step <= STEPS * 0.75, `when the priority-3 run ended (${STEPS} steps) the priority-1 run had ${lowThen.step}`);
    assert.ok(lowThen.step >= 1, 'the priority-1 run is not starved');

    // Pause the low-priority run: it stops within a step; resume: it finishes.
    await client.pause(low);
    const paused = await waitFor('the pause to hold', 10_000, async () => {
      const r = await client.status(low);
      return r.state === metaloop.RunState.RUN_STATE_PAUSED ? r : null;
    });
    await sleep(1500);
    const still = await client.status(low);
    assert.ok(still.step <= paused.step + 1, `paused at ${paused.step}, then ${still.step}`);
    await client.resume(low);
    const lowEnd = await waitRunEnd(client, low, 240_000, describeProcs);
    assert.equal(lowEnd.state, metaloop.RunState.RUN_STATE_SUCCEEDED, lowEnd.error);
  });
});

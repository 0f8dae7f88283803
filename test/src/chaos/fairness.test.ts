/**
 * Issue 5, many runs: two runs submitted together share 2 saturated worker processes (each shard
 * held 100 ms) by priority. With priorities 1 and 3 and 4 shards in flight, the priority-3 run gets
 * three times the workers of the priority-1 run (counted in shards computed while both run). Pause
 * holds a run within a step; resume continues it.
 *
 * The measurement. The scheduler (coordinator/src/scheduler.ts) gives each run its share of the 4
 * in-flight slots, ⌊4·w/Σw⌋: 3 for priority 3, 1 for priority 1, and does not lend a run's slots
 * out across its step barrier; the work queue is FIFO, so every shard waits the same time L and a
 * run's shard throughput is proportional to the slots it keeps busy. The high run takes 6 shards a
 * step (2 waves of its 3 slots), the low run 2 shards a step (2 waves of its 1 slot): both steps
 * last 2L plus the same barrier (aggregate, update, publish θ), so both runs keep their slots
 * equally busy and the shard ratio is the slot ratio, 3, for any barrier time. (With the same 5
 * shards a step for both, the high run would idle one slot in its second wave: 5/2 = 2.5.)
 *
 * The tolerance. Shards are counted from each run's history (per-step completion times, one
 * clock): the window runs from the high run's step K0 (after the low run's head start: alone, it
 * held all 4 slots) to its last step, n = HIGH_STEPS − K0 high steps = 6n shards. In that window
 * the low run ideally completes n steps (2n shards = 6n / 3). Its counted steps c are whole steps
 * completed inside the window, so the two window edges cut at most one step in total: |c − n| < 1
 * from counting alone; each step's jitter (FIFO order, timers) shifts the phase of the low run's
 * steps against the high run's by a fraction of a step, which does not accumulate (both runs' rates
 * are set by the same queue): one more step. So |c − n| ≤ 2, i.e. the ratio 6n / 2c = 3n / c lies
 * in [3n/(n+2), 3n/(n−2)]: for n = 22, [2.75, 3.3]. More steps would tighten it as 2/n.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metaloop, startNatsServer, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { Proc, sleep, waitFor } from '@metaloop/testing';
import { apiClient, sinusoidSets, startCoordinator, startWorker, submitRun, waitRunEnd, waitWorkers } from '@metaloop/testing/cluster';

const HIGH_STEPS = 24;
/** High run steps skipped at the start of the window (the low run's head start). */
const K0 = 2;
/** The low run does ~HIGH_STEPS steps while the high run is active: twice that keeps it running. */
const LOW_STEPS = 2 * HIGH_STEPS;
// 6 shards of 2 tasks per step for the high run, 2 for the low run (see the module comment).
const HIGH = sinusoidSets(HIGH_STEPS, ['outer.metaBatch=12', 'outer.shardSize=2', 'checkpoint.every=0']);
const LOW = sinusoidSets(LOW_STEPS, ['outer.metaBatch=4', 'outer.shardSize=2', 'checkpoint.every=0']);
const HIGH_SHARDS_PER_STEP = 6;
const LOW_SHARDS_PER_STEP = 2;

/** Completion times (Unix ms, the coordinator's clock) of a run's meta-steps 1, 2, …. */
async function stepTimes(client: ApiClient, runId: string): Promise<number[]> {
  const h = JSON.parse(Buffer.from((await client.history(runId)).data).toString('utf8')) as { steps: number[]; timeMs: number[] };
  assert.deepEqual(h.steps, Array.from({ length: h.steps.length }, (_, i) => i + 1), `${runId}: one history entry per step`);
  return h.timeMs;
}

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

  it('the priority-3 run gets three times the workers of the priority-1 run', async (t) => {
    const client = api.client;
    await waitWorkers(client, 2, 60_000, describeProcs);
    const low = await submitRun(client, LOW, 1);
    const high = await submitRun(client, HIGH, 3);
    const highEnd = await waitRunEnd(client, high, 240_000, describeProcs);
    const lowThen = await client.status(low);
    assert.equal(highEnd.state, metaloop.RunState.RUN_STATE_SUCCEEDED, highEnd.error);
    assert.equal(highEnd.priority, 3);
    assert.ok(lowThen.step < LOW_STEPS, `the priority-1 run must still be running when the priority-3 run ends (it did ${lowThen.step} steps)`);

    const highTimes = await stepTimes(client, high);
    const lowTimes = await stepTimes(client, low);
    assert.equal(highTimes.length, HIGH_STEPS);
    const from = highTimes[K0 - 1]!;
    const to = highTimes[HIGH_STEPS - 1]!;
    const n = HIGH_STEPS - K0;
    const c = lowTimes.filter((ms) => ms > from && ms <= to).length;
    const ratio = (n * HIGH_SHARDS_PER_STEP) / (c * LOW_SHARDS_PER_STEP);
    const [lo, hi] = [(3 * n) / (n + 2), (3 * n) / (n - 2)];
    t.diagnostic(`while the priority-3 run did steps ${K0 + 1}..${HIGH_STEPS} (${n * HIGH_SHARDS_PER_STEP} shards in ${to - from} ms), the priority-1 run did ${c} steps (${c * LOW_SHARDS_PER_STEP} shards): ratio ${ratio.toFixed(3)}, allowed [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
    assert.ok(ratio >= lo && ratio <= hi, `shard ratio ${ratio.toFixed(3)} (priority 3: ${n * HIGH_SHARDS_PER_STEP} shards, priority 1: ${c * LOW_SHARDS_PER_STEP}) is not 3 within [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);

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

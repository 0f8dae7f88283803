/**
 * Issue 15, item 1: the failure model (docs/reliability.md) on tfjs (the `tensorflow` backend), where Conv4
 * and every GPU run compute. A nats-server with JetStream on disk, a coordinator process (2 s
 * leases) and worker processes on tensorflow (each shard held ≥ 200 ms, so a kill lands mid-shard)
 * train a small Conv4 on synthetic glyphs and the sinusoid MLP with `model.fused: false`; the
 * undisturbed runs' θ and final evaluations are the reference each disturbed run must reproduce
 * bit for bit:
 *   1. kill -9 a worker mid-shard       → succeeds, same θ and evaluation, redeliveries > 0 (also for
 *      a small ResNet-12, a layer graph with residual joins: direct dispatch only, to stay lean)
 *   2. kill -9 the coordinator mid-run  → a new one resumes from the checkpoint, same θ and evaluation
 *   3. restart nats-server mid-run      → succeeds, same θ and evaluation
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { waitNewLine, waitStep, waitWorkers } from '@metaloop/testing/cluster';
import { conv4Run, type Outcome, requireTensorflow, resnet12Run, sinusoidTfjsRun, startTfWorker, type TfjsRun, train } from '@metaloop/testing/tfjs';

/**
 * The dispatch every process of this suite runs, set explicitly: direct (the default) here;
 * tfjs-faults-queue.test.ts imports this file with METALOOP_FAULTS_DISPATCH=queue. The processes
 * the suite starts inherit METALOOP_DISPATCH.
 */
const MODE = process.env.METALOOP_FAULTS_DISPATCH === 'queue' ? 'queue' : 'direct';
process.env.METALOOP_DISPATCH = MODE;
const CONV = conv4Run(10);
const SINUSOID = sinusoidTfjsRun(10);
/** The layer-graph run of test 1 (direct dispatch: what the queue mode adds is dispatch, not compute). */
const GRAPHS = MODE === 'direct' ? [resnet12Run(6)] : [];
const SLOW_MS = 200;
const RUN_MS = 240_000;
// Leases of 2 s; no speculative copies before 6 s, so a dead worker's shard comes back by redelivery.
const COORDINATOR_ARGS = ['--speculative-min-ms', '6000'];

describe(`chaos on tfjs (${MODE} dispatch): worker, coordinator and NATS failures (tensorflow backend)`, { timeout: 900_000 }, () => {
  const cluster = new ChaosCluster({
    coordinator: { args: COORDINATOR_ARGS },
    startWorker: (n, url) => startTfWorker(`tw${n}`, url, { slowShardMs: SLOW_MS }),
  });
  const { describeProcs, newWorker, workers } = cluster;
  let nats: NatsServer;
  let client: ApiClient;
  const reference = new Map<string, Outcome>();

  /** Trains `run` (disturbed by `onRunning`) and asserts θ and the evaluation equal the undisturbed run's. */
  async function sameAsReference(run: TfjsRun, what: string, onRunning: (runId: string) => Promise<void>): Promise<Outcome> {
    const ref = reference.get(run.label);
    assert.ok(ref, `no reference for ${run.label}`);
    await waitWorkers(client, 2, 90_000, describeProcs);
    const out = await train(client, run, RUN_MS, describeProcs, onRunning);
    assert.equal(out.sha, ref.sha, `${run.label} after ${what}: θ differs from the undisturbed run ${ref.runId}`);
    assert.equal(out.eval, ref.eval, `${run.label} after ${what}: the evaluation differs from the undisturbed run ${ref.runId}`);
    return out;
  }

  before(async () => {
    requireTensorflow();
    await cluster.start(2);
    ({ nats, client } = cluster);
  });
  after(() => cluster.close());

  it('trains the undisturbed reference runs', async () => {
    await waitWorkers(client, 2, 90_000, describeProcs);
    const ws = await client.workers();
    assert.deepEqual(ws.map((w) => w.backend), ['tensorflow', 'tensorflow'], 'both workers compute on tensorflow');
    for (const run of [CONV, SINUSOID, ...GRAPHS]) reference.set(run.label, await train(client, run, RUN_MS, describeProcs));
  });

  it('1. kill -9 of a worker mid-shard: the shard is redelivered, same θ and evaluation', async () => {
    for (const run of [CONV, SINUSOID, ...GRAPHS]) {
      const victim = workers.find((w) => !w.exited)!;
      const out = await sameAsReference(run, 'a worker kill -9', async (runId) => {
        await waitStep(client, runId, 3, 60_000, describeProcs);
        await waitNewLine(victim, /shard started/, 30_000);
        await victim.kill();
        assert.equal(victim.exited?.signal, 'SIGKILL');
        newWorker();
      });
      const rec = await client.status(out.runId);
      assert.ok(rec.redeliveries > 0, `${run.label}: redeliveries should be reported, record says ${rec.redeliveries}`);
    }
  });

  it('2. kill -9 of the coordinator mid-run: a new one resumes from a checkpoint, same θ and evaluation', async () => {
    for (const run of [CONV, SINUSOID]) {
      await sameAsReference(run, 'a coordinator kill -9', async (runId) => {
        await waitStep(client, runId, 5, 60_000, describeProcs);
        await cluster.replaceCoordinator(runId);
      });
    }
  });

  it('3. restart of nats-server mid-run (JetStream on disk): the run succeeds, same θ and evaluation', async () => {
    for (const run of [CONV, SINUSOID]) {
      await sameAsReference(run, 'a nats-server restart', async (runId) => {
        await waitStep(client, runId, 4, 60_000, describeProcs);
        await nats.restart({ downMs: 1000 });
      });
    }
  });
});

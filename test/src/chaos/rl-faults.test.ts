/**
 * Issue 26: determinism and the failure model on a meta-RL spec (navigation-2d, second-order
 * MAML through the policy-gradient step, rollouts on the workers). A nats-server with JetStream on
 * disk, a coordinator process (2 s leases) and worker processes (each shard held ≥ 200 ms, so a
 * kill lands mid-shard); the undisturbed two-worker run's θ and final evaluation (every double of
 * its returns, CIs and gains) are the reference each other run must reproduce bit for bit:
 *   1. one worker instead of two
 *   2. kill -9 of a worker mid-shard      → succeeds, redeliveries > 0
 *   3. kill -9 of the coordinator mid-run → a new one resumes from the checkpoint
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient } from '@metaloop/client';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { startWorker, waitNewLine, waitStep, waitWorkers } from '@metaloop/testing/cluster';
import { navigationRun } from '@metaloop/testing/rl';
import { train, type Outcome } from '@metaloop/testing/tfjs';

const RUN = navigationRun(8);
const RUN_MS = 240_000;

describe('meta-RL determinism and chaos: 1 vs 2 workers, worker kill -9, coordinator kill -9 + resume', { timeout: 900_000 }, () => {
  const cluster = new ChaosCluster({
    // No speculative copies before 6 s, so a dead worker's shard comes back by redelivery.
    coordinator: { args: ['--speculative-min-ms', '6000'] },
    startWorker: (n, url) => startWorker(`rw${n}`, url, { slowShardMs: 200 }),
  });
  const { describeProcs, newWorker, workers } = cluster;
  let client: ApiClient;
  let reference: Outcome;

  async function sameAsReference(what: string, live: number, onRunning?: (runId: string) => Promise<void>): Promise<Outcome> {
    await waitWorkers(client, live, 90_000, describeProcs);
    const out = await train(client, RUN, RUN_MS, describeProcs, onRunning);
    assert.equal(out.sha, reference.sha, `after ${what}: θ differs from the undisturbed run ${reference.runId}`);
    assert.equal(out.eval, reference.eval, `after ${what}: the evaluation differs from the undisturbed run ${reference.runId}`);
    return out;
  }

  before(async () => {
    await cluster.start(2);
    client = cluster.client;
  });
  after(() => cluster.close());

  it('trains the undisturbed reference run on two workers', async () => {
    await waitWorkers(client, 2, 90_000, describeProcs);
    reference = await train(client, RUN, RUN_MS, describeProcs);
    const rec = await client.status(reference.runId);
    assert.equal(rec.rl, true);
    assert.ok((rec.lastEval?.postReturn?.length ?? 0) === 2 && rec.lastEval!.gainCi95!.length === 2, 'a meta-RL evaluation with paired gains');
  });

  it('1. one worker: the same θ and evaluation', async () => {
    const stopped = cluster.liveWorkers()[1]!;
    await stopped.stop();
    await waitWorkers(client, 1, 30_000, describeProcs);
    try {
      await waitFor1(client);
      await sameAsReference('training on one worker', 1);
    } finally {
      newWorker(); // back to two, so a failure here does not also fail 2 and 3 on waitWorkers
    }
  });

  it('2. kill -9 of a worker mid-shard: the shard is redelivered, same θ and evaluation', async () => {
    const victim = workers.find((w) => !w.exited)!;
    const out = await sameAsReference('a worker kill -9', 2, async (runId) => {
      await waitStep(client, runId, 2, 60_000, describeProcs);
      await waitNewLine(victim, /shard started/, 30_000);
      await victim.kill();
      assert.equal(victim.exited?.signal, 'SIGKILL');
      newWorker();
    });
    const rec = await client.status(out.runId);
    assert.ok(rec.redeliveries + rec.reissued > 0, `the killed worker's shard should have been issued again (redeliveries ${rec.redeliveries}, reissued ${rec.reissued})`);
  });

  it('3. kill -9 of the coordinator mid-run: a new one resumes from a checkpoint, same θ and evaluation', async () => {
    await sameAsReference('a coordinator kill -9', 2, async (runId) => {
      await waitStep(client, runId, 3, 60_000, describeProcs);
      await cluster.replaceCoordinator(runId);
    });
  });
});

/** Waits until the coordinator's live-worker view has dropped the stopped worker (exactly one left). */
async function waitFor1(client: ApiClient): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await client.workers()).length !== 1) {
    if (Date.now() > deadline) throw new Error('the stopped worker is still listed as live after 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

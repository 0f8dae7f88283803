/**
 * Issue 14 item 3 on real processes: after a coordinator kill -9 and restart, the resumed run goes
 * at full speed from its first step. The cause of the old crawl: the resumed coordinator broadcasts
 * θ versions lower than the newest the workers had seen (it restarts from the checkpoint); workers
 * dropped them as old and read the Object Store, whose copy was not written yet ("params not found",
 * a 1 s retry per shard). Asserted on the workers' own counters, not on timings: no shard of the
 * resumed run is retried or failed, and θ is bitwise the undisturbed run's.
 * On both dispatch modes, each set explicitly: direct (the default; a worker drops the killed
 * coordinator session's assignments once the new session assigns) and queue (the resumed
 * coordinator purges the shards the killed one left queued).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiClient } from '@metaloop/client';
import { freePort } from '@metaloop/testing';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { metricValue, scrape, sinusoidSets, startWorker, trainToEnd, waitStep } from '@metaloop/testing/cluster';

const STEPS = 60;
// Checkpoints every 10 steps; the kill lands at step ≥ 25, so the resume replays steps 20..25+.
const SETS = sinusoidSets(STEPS, ['checkpoint.every=10', 'checkpoint.keep=2']);
// Each shard held ≥ 60 ms: the kill lands mid-run, well past a checkpoint.
const SLOW_MS = 60;
const KILL_AT = 25;

for (const mode of ['direct', 'queue'] as const) describe(`chaos (${mode} dispatch): coordinator kill -9 + restart, the resumed run at full speed`, { timeout: 300_000 }, () => {
  const env = { METALOOP_DISPATCH: mode };
  const workerPorts: number[] = [];
  const cluster = new ChaosCluster({
    coordinator: { args: ['--speculative-min-ms', '6000'], env },
    startWorker: (n, url) => startWorker(`r${n}`, url, { slowShardMs: SLOW_MS, metricsPort: workerPorts[n - 1]!, env }),
  });
  const { describeProcs, procs } = cluster;
  let client: ApiClient;

  /** Retries and failures each worker counted so far (all runs), read from its /metrics. */
  async function workerTroubles(): Promise<{ retries: number; failures: number }> {
    let retries = 0;
    let failures = 0;
    for (const port of workerPorts) {
      const text = await scrape(port);
      assert.match(text, /^metaloop_worker_shard_retries_total\{/m, `worker on :${port} exports its retry counter`);
      retries += metricValue(text, 'metaloop_worker_shard_retries_total');
      failures += metricValue(text, 'metaloop_worker_shard_failures_total');
    }
    return { retries, failures };
  }

  const train = (onRunning?: (runId: string) => Promise<void>) => trainToEnd(client, SETS, STEPS, describeProcs, onRunning, 200_000);

  before(async () => {
    workerPorts.push(await freePort(), await freePort());
    await cluster.start(2);
    client = cluster.client;
  });
  after(() => cluster.close());

  it('after a kill -9 and restart no shard is retried or fails, and θ equals the undisturbed run', async () => {
    const reference = (await train()).paramsSha256;
    assert.match(reference, /^[0-9a-f]{64}$/);
    const undisturbed = await workerTroubles();
    assert.deepEqual(undisturbed, { retries: 0, failures: 0 }, 'the undisturbed run needs no retries');

    let atKill = { retries: 0, failures: 0 };
    const rec = await train(async (runId) => {
      await waitStep(client, runId, KILL_AT, 60_000, describeProcs);
      const line = await cluster.replaceCoordinator(runId, async () => {
        atKill = await workerTroubles();
      });
      assert.match(line, /fromStep"?[:=]\s*(20|30|40)\b/, `resumes from a checkpoint (every 10 steps): ${line}`);
    });
    assert.equal(rec.paramsSha256, reference, 'θ must equal the undisturbed run');
    const end = await workerTroubles();
    const retriedLines = procs.filter((p) => /^r\d/.test(p.name)).flatMap((p) => p.output().filter((l) => /will be retried/.test(l)));
    assert.equal(
      end.retries - atKill.retries,
      0,
      `shards retried after the resume (e.g. waiting for missing parameters):\n${retriedLines.slice(0, 5).join('\n')}`,
    );
    assert.equal(end.failures - atKill.failures, 0, 'shards failed after the resume');
  });
});

/**
 * A straggler in synchronous mode on the batched protocol (direct dispatch), on the fused path and
 * on tfjs: a nats-server, a coordinator process (speculative copies of a shard after 3 × the
 * median shard time, at least 500 ms) and two worker processes train the undisturbed reference;
 * then a third worker joins that holds every shard 1.5 s. Its shards are copied to the fast
 * workers, the first result wins, its own results come after their step was applied and are
 * rejected and counted; θ and the final evaluation equal the reference bit for bit, and every
 * shard has exactly one accepted result (none lost, none doubled).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ApiClient } from '@metaloop/client';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { metricValue, scrape, sinusoidSets, startWorker, waitWorkers } from '@metaloop/testing/cluster';
import { ROOT } from '@metaloop/testing';
import { finish, requireTensorflow, startTfWorker, submitTfjs, type Outcome, type TfjsRun } from '@metaloop/testing/tfjs';

const STEPS = 12;
/** Meta-batch 10 in shards of 2: 5 train shards a step over 3 workers, so the straggler always gets some. */
const SHARDS = 5;
/** eval.tasks 10 in shards of 2. */
const EVAL_SHARDS = 5;
const STRAGGLER_MS = 1500;
const RUN_MS = 180_000;
// Every process this suite starts inherits the dispatch, set explicitly: the batched protocol.
process.env.METALOOP_DISPATCH = 'direct';

const PATHS = [
  { path: 'fused', backend: 'cpu', extra: [] as string[], start: startWorker },
  { path: 'tfjs', backend: 'tensorflow', extra: ['model.fused=false', 'workers.backend=tensorflow'], start: startTfWorker },
] as const;

for (const p of PATHS) {
  describe(`chaos (direct dispatch, ${p.path} path): a straggler in synchronous mode`, { timeout: 420_000 }, () => {
    const run: TfjsRun = {
      label: `sinusoid-${p.path}`,
      file: join(ROOT, 'examples/sinusoid.yaml'),
      steps: STEPS,
      sets: sinusoidSets(STEPS, ['outer.shardSize=2', ...p.extra]),
    };
    const cluster = new ChaosCluster({
      coordinator: { args: ['--speculative-factor', '3', '--speculative-min-ms', '500'] },
      // Workers 1 and 2 are fast; worker 3, started after the reference, is the straggler.
      startWorker: (n, url) => p.start(`s${n}`, url, n === 3 ? { slowShardMs: STRAGGLER_MS } : {}),
    });
    let client: ApiClient;
    let reference: Outcome | undefined;
    before(async () => {
      if (p.backend === 'tensorflow') requireTensorflow();
      await cluster.start(2);
      client = cluster.client;
    });
    after(() => cluster.close());

    const train = async (): Promise<Outcome> => finish(client, run, await submitTfjs(client, run), RUN_MS, cluster.describeProcs);

    it('trains the undisturbed reference run', async () => {
      await waitWorkers(client, 2, 90_000, cluster.describeProcs);
      reference = await train();
      const rec = await client.status(reference.runId);
      assert.equal(rec.speculative, 0, 'no copies without a straggler');
    });

    it("copies the straggler's shards, the first result wins: same θ and evaluation, one accepted result per shard", async () => {
      assert.ok(reference, 'no reference run');
      cluster.newWorker();
      await waitWorkers(client, 3, 90_000, cluster.describeProcs);
      const ws = await client.workers();
      assert.ok(ws.every((w) => w.backend === p.backend), `every worker on ${p.backend}: ${ws.map((w) => w.backend).join(', ')}`);
      const out = await train();
      assert.equal(out.sha, reference.sha, `θ differs from the undisturbed run ${reference.runId}`);
      assert.equal(out.eval, reference.eval, `the evaluation differs from the undisturbed run ${reference.runId}`);
      const rec = await client.status(out.runId);
      assert.ok(rec.speculative > 0, `the straggler's shards were copied: ${rec.speculative}`);
      const late = (rec.rejected.duplicate ?? 0) + (rec.rejected.stale ?? 0);
      assert.ok(late > 0, `the straggler's late results rejected and counted: ${JSON.stringify(rec.rejected)}`);
      const metrics = await scrape(cluster.metricsPort);
      assert.equal(metricValue(metrics, 'metaloop_shards_completed_total', { run: out.runId }), STEPS * SHARDS + EVAL_SHARDS, 'none lost, none doubled');
    });
  });
}

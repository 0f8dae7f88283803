/**
 * Issue 5 acceptance 1-4 on real processes: a nats-server with JetStream on disk, a coordinator
 * process (2 s leases) and worker processes (each shard held ≥ 200 ms, so a kill lands mid-shard).
 * Every run trains the same small sinusoid spec; the undisturbed run's θ (paramsSha256) is the
 * reference each disturbed run must reproduce bit for bit.
 *   1. kill -9 a worker mid-shard       → succeeds, same θ, redeliveries > 0
 *   2. kill -9 the coordinator mid-run  → a new one resumes from the checkpoint, same θ
 *   3. restart nats-server mid-run      → succeeds, same θ
 *   4. garbage, NaN, duplicate, stale, wrong-shape and unknown-run results → each rejected and
 *      counted by reason (run record and /metrics), same θ
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { metaloop, subjects, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { metricValue, scrape, sinusoidSets, startWorker, trainToEnd, waitNewLine, waitRunEnd, waitStep } from '@metaloop/testing/cluster';

const STEPS = 24;
/**
 * The dispatch every process of this suite runs, set explicitly (not left to the default): queue
 * here; faults-direct.test.ts imports this file with METALOOP_FAULTS_DISPATCH=direct. The
 * processes the suite starts inherit METALOOP_DISPATCH.
 */
const MODE = process.env.METALOOP_FAULTS_DISPATCH === 'direct' ? 'direct' : 'queue';
process.env.METALOOP_DISPATCH = MODE;
const DIRECT = MODE === 'direct';
const SETS = sinusoidSets(STEPS);
const SLOW_MS = 200;
// Leases of 2 s; no speculative copies before 6 s, so a dead worker's shard comes back by redelivery.
const COORDINATOR_ARGS = ['--speculative-min-ms', '6000'];

describe(`chaos (${MODE} dispatch): worker, coordinator and NATS failures, junk results`, { timeout: 420_000 }, () => {
  const cluster = new ChaosCluster({
    coordinator: { args: COORDINATOR_ARGS },
    startWorker: (n, url) => startWorker(`w${n}`, url, { slowShardMs: SLOW_MS }),
  });
  const { describeProcs, newWorker } = cluster;
  let nats: NatsServer;
  let client: ApiClient;
  let reference = '';

  const train = (onRunning?: (runId: string) => Promise<void>) => trainToEnd(client, SETS, STEPS, describeProcs, onRunning, 180_000);

  before(async () => {
    await cluster.start(2);
    ({ nats, client } = cluster);
  });
  after(() => cluster.close());

  it('trains the undisturbed reference run', async () => {
    const rec = await train();
    reference = rec.paramsSha256;
    assert.match(reference, /^[0-9a-f]{64}$/);
    assert.equal(rec.redeliveries, 0, 'no redeliveries without faults');
  });

  it('1. kill -9 of a worker mid-shard: the shard is redelivered, same θ', async () => {
    assert.ok(reference);
    const victim = cluster.liveWorkers()[0]!;
    const rec = await train(async (runId) => {
      await waitStep(client, runId, 4, 60_000, describeProcs);
      await waitNewLine(victim, /shard started/, 30_000);
      await victim.kill();
      newWorker(); // elastic: a new worker joins
    });
    assert.equal(victim.exited?.signal, 'SIGKILL');
    assert.equal(rec.paramsSha256, reference, 'θ must equal the undisturbed run');
    assert.ok(rec.redeliveries > 0, `redeliveries should be reported, record says ${rec.redeliveries}`);
    const metrics = await scrape(cluster.metricsPort);
    assert.ok(metricValue(metrics, 'metaloop_shards_redelivered_total', { run: rec.runId }) > 0, 'metaloop_shards_redelivered_total > 0');
  });

  it('2. kill -9 of the coordinator mid-run: a new one resumes from the checkpoint, same θ', async () => {
    const rec = await train(async (runId) => {
      await waitStep(client, runId, 8, 60_000, describeProcs);
      const line = await cluster.replaceCoordinator(runId);
      assert.match(line, /fromStep"?[:=]\s*(5|10)\b/, `resumes from a checkpoint (every 5 steps): ${line}`);
    });
    assert.equal(rec.paramsSha256, reference, 'θ must equal the undisturbed run');
  });

  it('3. restart of nats-server mid-run (JetStream on disk): the run succeeds, same θ', async () => {
    const rec = await train(async (runId) => {
      await waitStep(client, runId, 6, 60_000, describeProcs);
      await nats.restart({ downMs: 1000 });
    });
    assert.equal(rec.paramsSha256, reference, 'θ must equal the undisturbed run');
  });

  it('a shard failing on every delivery fails its run after MaxDeliver, naming the shard and the last error', async () => {
    const { loadSpec } = await import('@metaloop/shared');
    const { readFileSync } = await import('node:fs');
    const nodePath = await import('node:path');
    const { ROOT } = await import('@metaloop/testing');
    const file = nodePath.join(ROOT, 'examples/omniglot-5w1s.yaml');
    // A data set path no worker has: every worker hands shard 0 back (a data refusal). Queue
    // dispatch cannot steer shards, so each delivery counts as a failure; direct dispatch stops
    // assigning the run to each worker that refused and fails it once none is left.
    const spec = loadSpec(readFileSync(file, 'utf8'), file, ['task.path=/nonexistent/omniglot', 'outer.steps=2', 'eval.every=0', 'workers.backend=any']);
    const { runId } = await client.submit(JSON.stringify(spec), 'missing-data.yaml');
    const rec = await waitRunEnd(client, runId, 120_000, describeProcs);
    assert.equal(rec.state, metaloop.RunState.RUN_STATE_FAILED, `expected failed, got ${rec.state}`);
    assert.match(rec.error, DIRECT ? /no live worker holds the run's data; refusals: .*nonexistent/ : /shard \d+ of step 0 failed 5 times; last error: data_refused: .*nonexistent/, rec.error);
  });

  it('4. garbage, NaN, duplicate, stale, wrong-shape and unknown-run results are rejected by reason, same θ', async () => {
    const subj = subjects();
    let nc: NatsConnection | undefined;
    try {
      const rec = await train(async (runId) => {
        nc = await connect({ servers: nats.url });
        // Direct dispatch sends results as core requests (nothing stored): watch them too.
        const seen: Uint8Array[] = [];
        nc.subscribe(subj.hotResultsAll(), {
          callback: (_err, m) => {
            seen.push(m.data);
          },
        });
        await waitStep(client, runId, 3, 60_000, describeProcs);
        const jsm = await jetstreamManager(nc);
        // A real accepted result of this run (a step >= 1), the base of the forgeries.
        const stored = await jsm.streams.getMessage(subj.resultsStream, { last_by_subj: subj.results(runId) }).catch(() => null);
        // Each hot-path request is a ResultBatch: every result a worker returns of one assignment.
        const hot = seen
          .flatMap((d) => metaloop.ResultBatch.decode(d).results.map((r) => metaloop.ShardResult.decode(r)))
          .filter((r) => r.runId === runId && r.step >= 1 && !r.error)
          .pop();
        // The mode really used: direct dispatch sends results over the hot path only, the queue mode through the stream.
        if (DIRECT) assert.ok(hot && !stored, `direct dispatch: results on the hot path (${seen.length} seen), none stored`);
        else assert.ok(stored, 'queue dispatch: a result stored in the results stream');
        const real = stored ? metaloop.ShardResult.decode(stored.data) : hot!;
        assert.ok(real.step >= 1 && !real.error && real.grad, `a usable real result: step ${real.step}`);
        // Each forgery goes both ways a result can come: the JetStream results stream and the hot
        // path's request, as a batch of one (whose reply acks it, rejected or not).
        const publish = (_what: string, data: Uint8Array, run = runId) => {
          nc!.publish(subj.results(run), data);
          const batch = metaloop.ResultBatch.encode({ results: [data] }).finish();
          void nc!.request(`${subj.hotResults(run)}.forger.x.1`, batch, { timeout: 5000 }).catch(() => undefined);
        };
        const enc = (r: metaloop.IShardResult) => metaloop.ShardResult.encode(r).finish();
        const nanGrad = new Float32Array(real.grad.data!.byteLength / 4).fill(Number.NaN);
        publish('garbage', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
        // A hot-path request that is no ResultBatch at all.
        void nc.request(`${subj.hotResults(runId)}.forger.x.2`, new Uint8Array([0xff, 0xff, 0xff]), { timeout: 5000 }).catch(() => undefined);
        publish('nan', enc({ ...real, grad: { tensors: real.grad.tensors, data: new Uint8Array(nanGrad.buffer) }, workerId: 'forger' }));
        publish('duplicate', enc({ ...real, workerId: 'forger' }));
        publish('stale', enc({ ...real, paramVersion: real.step - 1, workerId: 'forger' }));
        publish('wrong-shape', enc({ ...real, grad: { tensors: [{ name: 'w', shape: [3] }], data: new Uint8Array(12) }, workerId: 'forger' }));
        publish('unknown-run', enc({ ...real, runId: 'nobody-000000', workerId: 'forger' }), 'nobody-000000');
        await nc.flush();
      });
      assert.equal(rec.paramsSha256, reference, 'θ must equal the clean run');
      const by = rec.rejected;
      for (const reason of ['malformed', 'non_finite', 'duplicate', 'stale', 'wrong_shape']) {
        assert.ok((by[reason] ?? 0) >= 1, `reason ${reason} counted in the run record: ${JSON.stringify(by)}`);
      }
      const metrics = await scrape(cluster.metricsPort);
      for (const reason of ['malformed', 'non_finite', 'duplicate', 'stale', 'wrong_shape']) {
        assert.ok(metricValue(metrics, 'metaloop_results_rejected_total', { run: rec.runId, reason }) >= 1, `/metrics counts ${reason}`);
      }
      assert.ok(metricValue(metrics, 'metaloop_results_rejected_total', { reason: 'unknown_run' }) >= 1, '/metrics counts unknown_run');
    } finally {
      await nc?.close();
    }
  });
});

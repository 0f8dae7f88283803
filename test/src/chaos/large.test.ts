/**
 * Issue 5, large models: θ and shard results of ≥ 8 MB (an MLP 1-1500-1500-1, 2.25 M parameters,
 * 9 MB of float32) cross a nats-server whose max_payload is 1 MiB: parameter versions and
 * checkpoints through the Object Store, results through the `blobs` object store. Two worker
 * processes; the run succeeds with finite losses, and its θ equals a one-worker run's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { metaloop, paramLayout, startNatsServer, loadSpec, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { readFileSync } from 'node:fs';
import { Proc, SINUSOID } from '@metaloop/testing';
import { apiClient, metricValue, scrape, startCoordinator, startWorker, submitRun, waitRunEnd, waitWorkers } from '@metaloop/testing/cluster';

const SETS = [
  'model.hidden=[1500,1500]',
  'outer.steps=3',
  'outer.metaBatch=4',
  'outer.shardSize=2',
  'eval.every=0',
  'eval.tasks=2',
  'eval.innerSteps=1',
  'checkpoint.every=3',
  'checkpoint.keep=1',
];

describe('chaos: large models (≥ 8 MB of parameters and results)', { timeout: 400_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  let api: { client: ApiClient; close: () => Promise<void> };
  let metricsPort = 0;
  const stopped = new Set<Proc>();
  const describeProcs = () => procs.map((p) => p.tail(12)).join('\n');

  before(async () => {
    nats = await startNatsServer();
    api = await apiClient(nats.url);
    const c = await startCoordinator('coordinator', nats.url, { leaseMs: 30_000 });
    metricsPort = c.metricsPort;
    procs.push(c.proc, startWorker('lw1', nats.url, { env: { METALOOP_LOG_LEVEL: 'info' } }), startWorker('lw2', nats.url, { env: { METALOOP_LOG_LEVEL: 'info' } }));
  });

  after(async () => {
    await api?.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it('trains a 9 MB MLP end to end; θ equal with 1 and 2 workers', async () => {
    const spec = loadSpec(readFileSync(SINUSOID, 'utf8'), SINUSOID, SETS);
    const params = paramLayout(spec).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    assert.ok(params * 4 >= 8_000_000, `θ is ${params * 4} bytes`);
    const client = api.client;
    const run = async () => {
      const runId = await submitRun(client, SETS);
      const rec = await waitRunEnd(client, runId, 300_000, describeProcs, () => procs.find((p) => p.exited && !stopped.has(p))?.exitReason());
      assert.equal(rec.state, metaloop.RunState.RUN_STATE_SUCCEEDED, `${rec.error}\n${describeProcs()}`);
      assert.ok(Number.isFinite(rec.postLoss) && rec.postLoss > 0);
      assert.equal(rec.checkpointStep, 3);
      return rec;
    };
    await waitWorkers(client, 2, 90_000, describeProcs);
    const two = await run();
    const metrics = await scrape(metricsPort);
    assert.equal(metricValue(metrics, 'metaloop_parameter_bytes', { run: two.runId }), params * 4);
    // Results of 9 MB went through the blobs object store (max_payload is 1 MiB).
    const nc = await connect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info('OBJ_blobs');
      assert.ok(info.state.first_seq > 1 || info.state.messages > 0, 'the blobs store carried payloads');
      assert.ok((nc.info?.max_payload ?? 0) <= 1024 * 1024);
    } finally {
      await nc.close();
    }
    stopped.add(procs[2]!);
    await procs[2]!.stop();
    await waitWorkers(client, 1, 30_000, describeProcs);
    const one = await run();
    assert.equal(one.paramsSha256, two.paramsSha256, 'θ must not depend on the number of workers');
  });
});

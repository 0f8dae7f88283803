/**
 * Issue 15, item 1 on the path GPU clusters run: tfjs (the `tensorflow` backend), not the fused
 * float64 host path. A real nats-server, a coordinator process and worker processes train a small
 * Conv4 on synthetic glyphs and the sinusoid MLP with `model.fused: false`:
 *   - on 1 worker (the reference), then on 2 workers: θ and the final evaluation bitwise equal;
 *   - on 3 long-lived workers serving consecutive runs (the scenario: the same submit
 *     again on the same processes, after they served other runs): bitwise equal again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { Proc, waitFor } from '@metaloop/testing';
import { apiClient, startCoordinator, waitWorkers } from '@metaloop/testing/cluster';
import { conv4Run, type Outcome, requireTensorflow, sinusoidTfjsRun, startTfWorker, train } from '@metaloop/testing/tfjs';

const RUNS = [conv4Run(6), sinusoidTfjsRun(6)];
const RUN_MS = 240_000;

describe('tfjs determinism: 1 vs 2 workers, long-lived workers across runs (tensorflow backend)', { timeout: 900_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  let api: { client: ApiClient; close: () => Promise<void> };
  let client: ApiClient;
  const reference = new Map<string, Outcome>();

  const describeProcs = () => procs.map((p) => p.tail(12)).join('\n');
  const addWorker = () => procs.push(startTfWorker(`tw${procs.length}`, nats.url));

  async function allOnTensorflow(n: number): Promise<void> {
    await waitWorkers(client, n, 90_000, describeProcs);
    const ws = await client.workers();
    assert.deepEqual(ws.map((w) => w.backend), ws.map(() => 'tensorflow'), `workers not all on tensorflow: ${JSON.stringify(ws.map((w) => [w.workerId, w.backend]))}`);
  }

  before(async () => {
    requireTensorflow();
    nats = await startNatsServer();
    api = await apiClient(nats.url);
    client = api.client;
    const c = await startCoordinator('coordinator', nats.url);
    procs.push(c.proc);
    await waitFor('coordinator API', 30_000, async () => (await client.list()).length >= 0, describeProcs, () => c.proc.exitReason());
    addWorker();
  });

  after(async () => {
    await api?.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it('trains the reference runs on one worker', async () => {
    await allOnTensorflow(1);
    for (const run of RUNS) reference.set(run.label, await train(client, run, RUN_MS, describeProcs));
  });

  /** Trains every spec again; θ and the evaluation must equal the reference's bit for bit. */
  async function sameAsReference(what: string): Promise<void> {
    assert.equal(reference.size, RUNS.length, 'the reference runs did not finish');
    for (const run of RUNS) {
      const ref = reference.get(run.label)!;
      const out = await train(client, run, RUN_MS, describeProcs);
      assert.equal(out.sha, ref.sha, `${run.label} ${what}: θ differs from the 1-worker run ${ref.runId}`);
      assert.equal(out.eval, ref.eval, `${run.label} ${what}: the final evaluation differs from the 1-worker run ${ref.runId}`);
    }
  }

  it('two workers give bitwise-identical θ and evaluations', async () => {
    addWorker();
    await allOnTensorflow(2);
    await sameAsReference('on 2 workers');
  });

  it('three long-lived workers serving consecutive runs give the same θ and evaluations each time', async () => {
    addWorker();
    await allOnTensorflow(3);
    await sameAsReference('on 3 workers, first time');
    await sameAsReference('on the same 3 workers, again');
  });
});

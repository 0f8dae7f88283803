import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ApiCallError, fromBundle, InProcTransport, metaloop, paramLayout, specFromJson } from '@metaloop/shared';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';
import { evalScore, RunHistory, type HistoryJson } from './history.js';
import { decodeCheckpoint } from './checkpoint.js';
import { stateFromProto } from './run-state.js';
import { startInProcCluster } from '@metaloop/testing';

const SPEC = (steps: number) => `
name: hist
seed: 3
task: { family: sinusoid }
model: { kind: mlp, hidden: [4] }
algorithm: { kind: maml }
outer: { optimizer: adam, lr: 0.05, metaBatch: 6, shardSize: 3, steps: ${steps} }
eval: { every: 4, tasks: 3, innerSteps: 2 }
checkpoint: { every: 4, keep: 5 }
`;

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function start(bus: InProcTransport, delayMs = 0) {
  // QuadraticWorker takes shards from the work queue: queue dispatch, explicitly (direct is the default).
  const cluster = await startInProcCluster((transport) => Coordinator.create({ transport, recordIntervalMs: 50, dispatch: 'queue' }), [delayMs ? { delayMs: () => delayMs } : {}], { bus });
  closers.push(cluster.close);
  return { coordinator: cluster.coordinator, client: new ApiClient({ transport: bus.connect(), timeoutMs: 2000 }), close: cluster.close };
}

const historyOf = async (client: ApiClient, runId: string) => JSON.parse(Buffer.from((await client.history(runId)).data).toString('utf8')) as HistoryJson;

describe('run history', () => {
  it('records every step, evaluation and checkpoint, durably, and serves it (and θ) through the API', async () => {
    const bus = await InProcTransport.create({ leaseMs: 2000 });
    const { client } = await start(bus);
    const { runId } = await client.submit(SPEC(10), 'h.yaml');
    const rec = await client.waitFor(runId, { pollMs: 20 });
    assert.equal(stateFromProto(rec.state), 'succeeded');
    const h = await historyOf(client, runId);
    assert.deepEqual(h.steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(h.preLoss.length, 10);
    assert.deepEqual(h.evals.map((e) => e.step), [4, 8, 10]);
    assert.deepEqual(h.checkpoints.map((c) => c.step), [4, 8, 10]);
    assert.equal(h.evals[2]!.postLoss[1], Number(rec.lastEval!.postLoss![1]!.toPrecision(7)));
    const stored = RunHistory.decode((await bus.getHistory(runId))!).toJson();
    assert.deepEqual(stored.steps, h.steps);
    // export: latest = the final checkpoint; a step; best = a kept checkpoint with an evaluation
    const latest = await client.exportParams(runId, 'latest');
    assert.equal(latest.step, 10);
    assert.equal(latest.source, 'checkpoint');
    assert.equal((await client.exportParams(runId, '4')).step, 4);
    assert.ok([4, 8, 10].includes((await client.exportParams(runId, 'best')).step));
    assert.equal((await client.exportParams(runId, 'current')).source, 'params');
    await assert.rejects(client.exportParams(runId, '5'), (e: unknown) => e instanceof ApiCallError && /no checkpoint at step 5/.test(e.message));
    await assert.rejects(client.history('nope-1'), (e: unknown) => e instanceof ApiCallError && e.code === 'UNKNOWN_RUN');
  });

  it('θ larger than one NATS message comes in chunks of at most 512 KiB and equals the checkpoint', async () => {
    const bus = await InProcTransport.create({ leaseMs: 2000 });
    const { client } = await start(bus);
    const big = SPEC(2).replace('hidden: [4]', 'hidden: [600, 600]');
    const { runId } = await client.submit(big, 'big.yaml');
    assert.equal(stateFromProto((await client.waitFor(runId, { pollMs: 20 })).state), 'succeeded');
    const base = bus.connect();
    const sizes: number[] = [];
    const counting = Object.create(base, {
      request: {
        value: async (subject: string, data: Uint8Array, timeoutMs: number) => {
          const reply = await base.request(subject, data, timeoutMs);
          sizes.push(reply.byteLength);
          return reply;
        },
      },
    }) as typeof base;
    const blob = await new ApiClient({ transport: counting, timeoutMs: 2000 }).exportParams(runId, 'latest');
    assert.ok(sizes.length >= 3, `${sizes.length} replies`);
    assert.ok(sizes.every((n) => n < 600 * 1024), sizes.join(','));
    const spec = specFromJson(blob.specJson, 'spec');
    const cp = decodeCheckpoint(await bus.getCheckpoint(runId, 2), paramLayout(spec), 'adam');
    const got = fromBundle(metaloop.TensorBundle.decode(blob.data), paramLayout(spec)).data;
    assert.equal(got.length, cp.params.length);
    assert.ok(got.length > 360_000);
    assert.ok(got.every((v, i) => v === cp.params[i]));
  });

  it('a resumed run continues its history from the checkpoint, without duplicates', async () => {
    const bus = await InProcTransport.create({ leaseMs: 2000 });
    const first = await start(bus, 15);
    const { runId } = await first.client.submit(SPEC(12), 'h.yaml');
    while ((await first.client.status(runId)).step < 6) await new Promise((r) => setTimeout(r, 10));
    await first.close();
    const second = await start(bus);
    const rec = await second.client.waitFor(runId, { pollMs: 20 });
    assert.equal(stateFromProto(rec.state), 'succeeded');
    const h = await historyOf(second.client, runId);
    assert.deepEqual(h.steps, Array.from({ length: 12 }, (_, i) => i + 1));
    assert.deepEqual(h.evals.map((e) => e.step), [4, 8, 12]);
    assert.deepEqual(h.checkpoints.map((c) => c.step), [4, 8, 12]);
  });

  it('state changes: pending is "submitted", running after paused is "resumed"; truncate keeps them', () => {
    const h = new RunHistory('r-1');
    h.addState(null, 'pending', 0, 1);
    h.addState('pending', 'running', 0, 2);
    h.addState('running', 'paused', 3, 3);
    h.addState('paused', 'running', 3, 4);
    h.addState('running', 'cancelled', 5, 5);
    h.truncate(2);
    const j = RunHistory.decode(h.encode()).toJson();
    assert.deepEqual(j.states!.map((s) => [s.state, s.step]), [['submitted', 0], ['running', 0], ['paused', 3], ['resumed', 3], ['cancelled', 5]]);
  });

  it('truncate, encode/decode and the eval score', () => {
    const h = new RunHistory('r-1');
    for (let s = 1; s <= 5; s++) h.addStep(s, 1 / s, 0.5 / s, 1000 * s);
    h.addEval({ step: 2, tasks: 3, innerSteps: [1, 5], preLoss: 1, postLoss: [0.5, 0.25] });
    h.addEval({ step: 4, tasks: 3, innerSteps: [1, 5], preLoss: 1, postLoss: [0.5, 0.2] });
    h.addCheckpoint(4);
    h.truncate(3);
    const j = RunHistory.decode(h.encode()).toJson();
    assert.deepEqual(j.steps, [1, 2, 3]);
    assert.deepEqual(j.evals.map((e) => e.step), [2]);
    assert.deepEqual(j.checkpoints, []);
    assert.ok(evalScore({ postLoss: [0.5, 0.2], accuracy: [] }) > evalScore({ postLoss: [0.5, 0.25], accuracy: [] }));
    assert.ok(evalScore({ postLoss: [9], accuracy: [0.9] }) > evalScore({ postLoss: [0.1], accuracy: [0.5] }));
  });
});

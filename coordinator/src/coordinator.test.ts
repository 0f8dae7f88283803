import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ApiCallError, InProcTransport, metaloop, RequestTimeoutError, Rng, subjects } from '@metaloop/shared';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';
import type { CoordinatorOptions } from './coordinator-options.js';
import { stateFromProto } from './run-state.js';
import { startInProcCluster, type ClusterWorkerOptions, type QuadraticWorker } from '@metaloop/testing';

const SPEC = (steps: number, extra = '') => `
name: quad
seed: 9
task: { family: sinusoid }
model: { kind: mlp, hidden: [4] }
algorithm: { kind: maml }
outer: { optimizer: adam, lr: 0.05, metaBatch: 7, shardSize: 3, steps: ${steps} }
eval: { every: 5, tasks: 4, innerSteps: 2 }
checkpoint: { every: 4, keep: 2 }
${extra}`;

interface Harness {
  bus: InProcTransport;
  coordinator: Coordinator;
  client: ApiClient;
  workers: QuadraticWorker[];
  close(): Promise<void>;
}

const open: Harness[] = [];
after(async () => {
  for (const h of open.splice(0)) await h.close();
});

async function harness(
  workers: ClusterWorkerOptions[],
  options: Partial<CoordinatorOptions> = {},
  bus?: InProcTransport,
): Promise<Harness> {
  // QuadraticWorker takes shards from the work queue: queue dispatch, explicitly (direct is the default).
  const cluster = await startInProcCluster((transport) => Coordinator.create({ transport, recordIntervalMs: 100, dispatch: 'queue', ...options }), workers, { bus });
  const h: Harness = { ...cluster, client: new ApiClient({ transport: cluster.bus.connect(), timeoutMs: 2000 }) };
  open.push(h);
  return h;
}

async function train(h: Harness, steps: number): Promise<metaloop.RunRecord> {
  const rec = await h.client.submit(SPEC(steps), 'test.yaml');
  return h.client.waitFor(rec.runId, { pollMs: 20 });
}

function jitter(seed: number): (s: metaloop.Shard) => number {
  const rng = new Rng(seed);
  return () => rng.int(8);
}

describe('Coordinator', () => {
  let reference = '';

  it('trains to the end with one worker: record, eval summary, checkpoints', async () => {
    const h = await harness([{}]);
    const rec = await train(h, 12);
    assert.equal(stateFromProto(rec.state), 'succeeded', rec.error);
    assert.equal(rec.step, 12);
    assert.equal(rec.steps, 12);
    assert.match(rec.paramsSha256, /^[0-9a-f]{64}$/);
    assert.ok(rec.postLoss > 0 && rec.preLoss > rec.postLoss);
    assert.equal(rec.lastEval?.step, 12);
    assert.equal(rec.lastEval?.tasks, 4);
    assert.deepEqual(rec.lastEval?.innerSteps, [1, 2]);
    const ev = rec.lastEval;
    const post = ev.postLoss ?? [];
    assert.ok(Math.abs(post[0]! - ev.preLoss! / 2) < 1e-9 && Math.abs(post[1]! - ev.preLoss! / 4) < 1e-9);
    assert.ok(rec.seconds > 0 && rec.stepsPerSec > 0 && rec.tasksPerSec > 0);
    assert.deepEqual(await h.bus.listCheckpoints(rec.runId), [8, 12], 'checkpoint.keep = 2');
    assert.equal(h.coordinator.rejects.total(), 0);
    reference = rec.paramsSha256;
  });

  it('steps/s counts training only: time spent evaluating is left out', async () => {
    // Every evaluation shard takes 600 ms more (two evaluations of 2 shards: >= 2.4 s in all).
    const h = await harness([{ delayMs: (s) => (s.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 600 : 0) }]);
    const rec = await train(h, 10);
    assert.equal(stateFromProto(rec.state), 'succeeded', rec.error);
    const trainingSeconds = rec.step / rec.stepsPerSec;
    assert.ok(trainingSeconds <= rec.seconds - 2.4, `steps/s ${rec.stepsPerSec} implies ${trainingSeconds} s of training in a run of ${rec.seconds} s with >= 2.4 s of evaluation`);
  });

  it('gives bitwise-identical parameters with 3 workers and random arrival order', async () => {
    const h = await harness([{ delayMs: jitter(1) }, { delayMs: jitter(2) }, { delayMs: jitter(3) }]);
    const rec = await train(h, 12);
    assert.equal(stateFromProto(rec.state), 'succeeded');
    assert.equal(rec.paramsSha256, reference);
    assert.ok(h.workers.filter((w) => w.shardsDone > 0).length >= 2, 'work was shared');
  });

  it('re-publishes lost and rejected shards, counts junk by reason, and still gets the same θ', async () => {
    const seen = new Set<string>();
    const once = (key: string) => !seen.has(key) && seen.add(key) !== undefined;
    const h = await harness(
      [
        {
          fault: (s) =>
            s.step === 3 && s.shard === 1 && once('drop') ? 'drop' : s.step === 5 && s.shard === 2 && once('nan') ? 'nan' : undefined,
        },
        { delayMs: jitter(4) },
      ],
      { resultTimeoutMs: 200 },
    );
    const submitted = await h.client.submit(SPEC(12), 'test.yaml');
    const runId = submitted.runId;
    await h.bus.publishResult(runId, 'junk-1', new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    await h.bus.publishResult('nobody-1', 'junk-2', metaloop.ShardResult.encode({ runId: 'nobody-1', step: 0 }).finish());
    // Well-formed, but for a step that is not being collected: stale.
    await h.bus.publishResult(runId, 'junk-3', metaloop.ShardResult.encode({ runId, step: 11, shard: 0, paramVersion: 11, error: 'early' }).finish());
    const rec = await h.client.waitFor(runId, { pollMs: 20 });
    assert.equal(stateFromProto(rec.state), 'succeeded', rec.error);
    assert.equal(rec.paramsSha256, reference);
    const r = h.coordinator.rejects;
    assert.equal(r.get('malformed'), 1);
    assert.equal(r.get('unknown_run'), 1);
    assert.equal(r.get('non_finite'), 1);
    assert.ok(r.get('stale') >= 1);
  });

  it('fails a run whose shard keeps failing, naming the shard', async () => {
    const h = await harness([{ fault: (s) => (s.step === 2 && s.shard === 0 ? 'nan' : undefined) }], { maxShardFailures: 2 });
    const rec = await train(h, 6);
    assert.equal(stateFromProto(rec.state), 'failed');
    assert.match(rec.error, /shard 0 of step 2 failed 2 times; last error: non_finite/);
  });

  it('resumes an interrupted run from its checkpoint to the same θ', async () => {
    const slow = { delayMs: () => 15 };
    const h1 = await harness([slow]);
    const bus = h1.bus;
    const { runId } = await h1.client.submit(SPEC(12), 'test.yaml');
    while ((await h1.client.status(runId)).step < 6) await new Promise((r) => setTimeout(r, 10));
    await h1.close();
    const stored = metaloop.RunRecord.decode((await bus.getRun(runId))!);
    assert.equal(stateFromProto(stored.state), 'running', 'a closing coordinator leaves the run active');
    assert.equal(stored.checkpointStep, 4);
    const h2 = await harness([{}], {}, bus);
    const rec = await h2.client.waitFor(runId, { pollMs: 20 });
    assert.equal(stateFromProto(rec.state), 'succeeded');
    assert.equal(rec.paramsSha256, reference);
  });
});

describe('Coordinator resume (queue dispatch, as every test of this file)', () => {
  it("purges the shards the previous session left queued: only the new session's are computed", async () => {
    // No worker: the first session's shards of step 0 stay queued when it stops.
    const h1 = await harness([]);
    const bus = h1.bus;
    const { runId } = await h1.client.submit(SPEC(4), 'test.yaml');
    const shards = Math.ceil(7 / 3);
    for (let i = 0; i < 500 && bus.bus.work.size < shards; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(bus.bus.work.size, shards, 'the first session queued step 0');
    await h1.close();
    const h2 = await harness([], {}, bus);
    await h2.client.status(runId);
    for (let i = 0; i < 500 && bus.bus.work.size < shards; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bus.bus.work.size, shards, "the queue holds the new session's step 0 only (the old session's shards were purged)");
  });
});

describe('control API', () => {
  it('refuses an invalid spec naming the field, and starts nothing', async () => {
    const h = await harness([]);
    const before = await h.bus.listRuns();
    await assert.rejects(h.client.submit(SPEC(5).replace('lr: 0.05', 'lr: -1'), 'bad.yaml'), (err: unknown) => {
      assert.ok(err instanceof ApiCallError);
      assert.equal(err.code, 'INVALID_SPEC');
      assert.equal(err.field, 'outer.lr');
      assert.match(err.message, /outer\.lr/);
      return true;
    });
    assert.deepEqual(await h.bus.listRuns(), before);
  });

  it('status/cancel of an unknown run is UNKNOWN_RUN; cancel stops a run; pause and resume', async () => {
    const h = await harness([{ delayMs: () => 20 }]);
    await assert.rejects(h.client.status('nope-123'), (e: unknown) => e instanceof ApiCallError && e.code === 'UNKNOWN_RUN');
    await assert.rejects(h.client.cancel('nope-123'), (e: unknown) => e instanceof ApiCallError && e.code === 'UNKNOWN_RUN');
    const { runId } = await h.client.submit(SPEC(10_000), 'long.yaml');
    assert.match(runId, /^quad-[0-9a-f]{6}$/);
    const paused = await h.client.pause(runId);
    assert.equal(stateFromProto(paused.state), 'paused');
    const step = (await h.client.status(runId)).step;
    await new Promise((r) => setTimeout(r, 150));
    assert.ok((await h.client.status(runId)).step <= step + 1, 'a paused run makes no progress');
    assert.equal(stateFromProto((await h.client.resume(runId)).state), 'running');
    const cancelled = await h.client.cancel(runId);
    assert.equal(stateFromProto(cancelled.state), 'cancelled');
    await assert.rejects(h.client.cancel(runId), (e: unknown) => e instanceof ApiCallError && e.code === 'CONFLICT');
    const listed = await h.client.list();
    assert.ok(listed.some((r) => r.runId === runId && stateFromProto(r.state) === 'cancelled'));
    assert.equal((await h.client.list(false)).some((r) => r.runId === runId), false);
  });

  it('publishes step, eval and state events', async () => {
    const h = await harness([{}]);
    const kinds = new Set<number>();
    const sub = h.bus.subscribe(subjects().eventsAll(), (data) => kinds.add(metaloop.Event.decode(data).kind));
    await train(h, 5);
    await sub.close();
    for (const k of [metaloop.Event.Kind.KIND_STEP, metaloop.Event.Kind.KIND_EVAL, metaloop.Event.Kind.KIND_STATE, metaloop.Event.Kind.KIND_CHECKPOINT]) {
      assert.ok(kinds.has(k), `event kind ${k}`);
    }
  });

  it('a request nobody answers is a RequestTimeoutError', async () => {
    const t = await InProcTransport.create();
    try {
      await assert.rejects(new ApiClient({ transport: t, timeoutMs: 100 }).list(), RequestTimeoutError);
    } finally {
      await t.close();
    }
  });

  it('run() refuses a second call and close() is idempotent', async () => {
    const t = await InProcTransport.create();
    const c = await Coordinator.create({ transport: t });
    const running = c.run();
    await c.ready();
    await assert.rejects(c.run(), /cannot run the coordinator: the object is running/);
    await Promise.all([c.close(), c.close()]);
    await running;
    assert.equal(c.state, 'closed');
    await t.close();
  });
});

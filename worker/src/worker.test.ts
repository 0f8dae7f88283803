import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  initParams,
  InProcTransport,
  metaloop,
  shardMsgId,
  subjects,
  toBundle,
  TransportError,
  validateSpec,
  type RunSpec,
  type Transport,
} from '@metaloop/shared';
import { computeShard, type EvalShardResult, type TrainShardResult } from './engine.js';
import { Worker } from './worker.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const spec: RunSpec = validateSpec({
  name: 'worker-test',
  seed: 5,
  task: { family: 'sinusoid', shots: 5, queries: 5 },
  model: { kind: 'mlp', hidden: [10, 10] },
  algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
});
const theta = initParams(spec);

interface Harness {
  bus: InProcTransport;
  results: metaloop.ShardResult[];
  heartbeats: metaloop.Heartbeat[];
  shard(runId: string, step: number, index: number, seeds: number[], extra?: Partial<metaloop.Shard.$Properties>): Promise<void>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const bus = await InProcTransport.create({ leaseMs: 5000, maxDeliver: 3 });
  const results: metaloop.ShardResult[] = [];
  const heartbeats: metaloop.Heartbeat[] = [];
  const rc = await bus.consumeResults((m) => {
    results.push(metaloop.ShardResult.decode(m.data));
  });
  const hc = bus.subscribe(subjects().heartbeat(), (data) => heartbeats.push(metaloop.Heartbeat.decode(data)));
  await bus.putRun('run-a', metaloop.RunRecord.encode({ runId: 'run-a', name: spec.name, specJson: JSON.stringify(spec) }).finish());
  await bus.putParams('run-a', 3, metaloop.TensorBundle.encode(toBundle(theta)).finish());
  return {
    bus,
    results,
    heartbeats,
    async shard(runId, step, index, seeds, extra = {}) {
      const kind = extra.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 'eval' : 'train';
      const data = metaloop.Shard.encode({ runId, step, shard: index, paramVersion: 3, taskSeeds: seeds, ...extra }).finish();
      await bus.publishWork(runId, shardMsgId(runId, step, index, kind), data);
    },
    async close() {
      await hc.close();
      await rc.close();
      await bus.close();
    },
  };
}

/** A transport whose first `failures` getParams calls fail like a NATS outage. */
function flakyParams(inner: Transport, failures: number): Transport {
  let left = failures;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'getParams') {
        return async (runId: string, version: number) => {
          if (left-- > 0) throw new TransportError('object store unavailable (injected)');
          return target.getParams(runId, version);
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe('Worker over InProcTransport', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('computes train and eval shards, publishes results, acks, heartbeats, closes', async () => {
    const h = await harness();
    cleanups.push(() => h.close());
    const worker = await Worker.create({ transport: h.bus.connect(), id: 'w-1', backend: 'cpu', heartbeatMs: 20, dispatch: 'queue' });
    cleanups.push(() => worker.close());
    assert.equal(worker.backend.name, 'cpu');
    const running = worker.run();
    await assert.rejects(worker.run(), { name: 'WorkerStateError' });

    await h.shard('run-a', 0, 0, [1, 2, 3]);
    await h.shard('run-a', 0, 1, [4, 5]);
    await h.shard('run-a', 0, 0, [9, 9, 9, 9], { kind: metaloop.ShardKind.SHARD_KIND_EVAL, evalInnerSteps: 3 });
    await until('3 results', () => (h.results.length >= 3 ? true : undefined));

    const expected0 = (await computeShard(spec, theta.data, { kind: 'train', taskSeeds: [1, 2, 3] })) as TrainShardResult;
    const r0 = h.results.find((r) => r.kind === metaloop.ShardKind.SHARD_KIND_TRAIN && r.shard === 0)!;
    assert.equal(r0.runId, 'run-a');
    assert.equal(r0.workerId, 'w-1');
    assert.equal(r0.paramVersion, 3);
    assert.equal(r0.tasks, 3);
    assert.equal(r0.error, '');
    assert.equal(r0.backend, 'cpu');
    assert.deepEqual(r0.grad?.tensors?.map((t) => t.name), theta.layout.map((t) => t.name));
    const grad = new Float32Array(new Uint8Array(r0.grad.data!).buffer);
    assert.deepEqual(grad, expected0.grad);
    assert.equal(r0.preLossSum, expected0.preLossSum);
    assert.equal(r0.postLossSum, expected0.postLossSum);

    const ev = h.results.find((r) => r.kind === metaloop.ShardKind.SHARD_KIND_EVAL)!;
    const expectedEval = (await computeShard(spec, theta.data, { kind: 'eval', taskSeeds: [9, 9, 9, 9], evalInnerSteps: 3 })) as EvalShardResult;
    assert.deepEqual(ev.evalLossSums, expectedEval.evalLossSums);
    assert.equal(ev.tasks, 4);

    // Acked: nothing is redelivered, the queue is empty.
    await sleep(50);
    assert.equal(h.results.length, 3);
    assert.equal(h.bus.bus.work.size, 0);

    const hb = await until('a heartbeat with tasks done', () => h.heartbeats.find((b) => b.tasksDone >= 9));
    assert.equal(hb.workerId, 'w-1');
    assert.equal(hb.backend, 'cpu');
    assert.equal(hb.device, 'cpu (js)');
    assert.equal(hb.pid, process.pid);
    assert.ok(hb.version.length > 0);
    assert.ok(['ready', 'busy'].includes(hb.state));
    assert.equal(worker.statistics.shardsDone, 3);

    await Promise.all([worker.close(), worker.close()]);
    await running;
    assert.equal(worker.state, 'closed');
    assert.equal(h.heartbeats.at(-1)?.state, 'draining');
    const n = h.heartbeats.length;
    await sleep(80);
    assert.equal(h.heartbeats.length, n, 'no heartbeats after close()');
    await assert.rejects(worker.run(), { name: 'WorkerStateError' });
  });

  test('failures: unknown run → error result and ack; malformed shard → dropped; fetch outage → nak and retry', async () => {
    const h = await harness();
    cleanups.push(() => h.close());
    const worker = await Worker.create({ transport: flakyParams(h.bus.connect(), 1), id: 'w-2', backend: 'cpu', retryDelayMs: 20, dispatch: 'queue' });
    cleanups.push(() => worker.close());
    const running = worker.run();

    await h.bus.publishWork('run-a', 'garbage', new Uint8Array([0xff, 0xff, 0xff, 0x0f]));
    await h.shard('run-b', 4, 0, [1]);
    await h.shard('run-a', 4, 1, [1]);
    await until('2 results', () => (h.results.length >= 2 ? true : undefined));
    const bad = h.results.find((r) => r.runId === 'run-b')!;
    assert.match(bad.error, /run-b has no run record/);
    assert.equal(bad.step, 4);
    const good = h.results.find((r) => r.runId === 'run-a')!;
    assert.equal(good.error, '');
    assert.equal(good.tasks, 1);
    assert.deepEqual(worker.statistics, { shardsDone: 1, tasksDone: 1, shardsFailed: 1, shardsRetried: 1, shardsDropped: 0, shardsRefused: 0 });
    await sleep(50);
    assert.equal(h.results.length, 2);
    assert.equal(h.bus.bus.work.size, 0);
    await worker.close();
    await running;
  });

  test('close() finishes the shard in progress, or abandons it (handed back) after closeTimeoutMs', async () => {
    // The abandoned shard must outlast close(): make it long (a few seconds of compute), so the
    // test does not race fast kernels; the finished one stays short.
    for (const [closeTimeoutMs, tasks] of [[30_000, 320], [0, 20_000]] as const) {
      const seeds = Array.from({ length: tasks }, (_, i) => i);
      const h = await harness();
      cleanups.push(() => h.close());
      const worker = await Worker.create({ transport: h.bus.connect(), backend: 'cpu', closeTimeoutMs, dispatch: 'queue' });
      const running = worker.run();
      await h.shard('run-a', 1, 0, seeds);
      await until('the shard to start', () => (worker.statistics.tasksDone > 0 ? true : undefined));
      await worker.close();
      await running;
      if (closeTimeoutMs > 0) {
        assert.equal(h.results.length, 1);
        assert.equal(h.results[0]!.tasks, tasks);
        assert.equal(h.bus.bus.work.size, 0);
      } else {
        assert.ok(worker.statistics.tasksDone < tasks);
        await sleep(30);
        assert.equal(h.results.length, 0, 'an abandoned shard publishes nothing');
        assert.equal(h.bus.bus.work.size, 1, 'an abandoned shard goes back to the queue');
      }
    }
  });

  test('close() before run() and twice is fine', async () => {
    const h = await harness();
    cleanups.push(() => h.close());
    const worker = await Worker.create({ transport: h.bus.connect(), backend: 'cpu', dispatch: 'queue' });
    await worker.close();
    await worker.close();
    assert.equal(worker.state, 'closed');
    await assert.rejects(worker.run(), { name: 'WorkerStateError' });
  });

  test('invalid options name the option', async () => {
    const h = await harness();
    cleanups.push(() => h.close());
    await assert.rejects(Worker.create({ transport: h.bus, heartbeatMs: -1 }), /heartbeatMs/);
    await assert.rejects(Worker.create({ transport: h.bus, id: 'a b' }), /option id/);
  });
});

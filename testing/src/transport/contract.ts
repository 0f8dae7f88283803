/**
 * The Transport contract: the same cases run against every implementation (contract.test.ts).
 * A backend opens a fresh, isolated "cluster" per case and returns three transports on it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { NotFoundError, RequestTimeoutError } from '@metaloop/shared';
import type { ResultMessage, Transport, WorkMessage } from '@metaloop/shared';
import { assignmentCases } from './contract-assign.js';

export interface ContractSettings {
  readonly leaseMs: number;
  readonly maxDeliver: number;
}

export interface ContractCluster {
  readonly coordinator: Transport;
  readonly worker: Transport;
  readonly worker2: Transport;
  /** Subject prefix to use for core pub/sub and request/reply in this cluster. */
  readonly prefix: string;
}

export interface ContractBackend {
  readonly name: string;
  open(settings: ContractSettings): Promise<ContractCluster>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const TIMEOUT = Symbol('timeout');

/** Pulls work one item at a time; a pull that timed out stays pending and is reused. */
class Puller {
  private pending: Promise<IteratorResult<WorkMessage>> | null = null;
  private readonly it: AsyncIterator<WorkMessage>;
  constructor(t: Transport, signal?: AbortSignal) {
    this.it = t.consumeWork({ pollMs: 1000, ...(signal ? { signal } : {}) })[Symbol.asyncIterator]();
  }
  async take(ms: number): Promise<WorkMessage | null> {
    this.pending ??= this.it.next();
    const r = await Promise.race([this.pending, sleep(ms).then((): typeof TIMEOUT => TIMEOUT)]);
    if (r === TIMEOUT) return null;
    this.pending = null;
    return r.done ? null : r.value;
  }
  async mustTake(ms: number): Promise<WorkMessage> {
    const m = await this.take(ms);
    assert.ok(m, `expected a work item within ${ms} ms`);
    return m;
  }
  /** Resolves true when the iterator finishes (done) within `ms`. */
  async ends(ms: number): Promise<boolean> {
    this.pending ??= this.it.next();
    const r = await Promise.race([this.pending, sleep(ms).then((): typeof TIMEOUT => TIMEOUT)]);
    return r !== TIMEOUT && r.done === true;
  }
}

const DEFAULTS: ContractSettings = { leaseMs: 1000, maxDeliver: 5 };

/** Registers the contract cases (run concurrently: each case has its own cluster). */
export function transportContract(backend: ContractBackend): void {
  describe(`transport contract: ${backend.name}`, { concurrency: true }, () => contractCases(backend));
}

function contractCases(backend: ContractBackend): void {
  const withCluster = (name: string, fn: (c: ContractCluster) => Promise<void>, settings: Partial<ContractSettings> = {}): void => {
    test(name, async () => {
      const c = await backend.open({ ...DEFAULTS, ...settings });
      try {
        await fn(c);
      } finally {
        await Promise.allSettled([c.worker.close(), c.worker2.close(), c.coordinator.close()]);
      }
    });
  };

  assignmentCases(withCluster);

  withCluster('work: publish, consume, ack', async (c) => {
    for (let i = 0; i < 3; i++) await c.coordinator.publishWork('run-a', `run-a.0.${i}`, enc(`shard ${i}`));
    const p = new Puller(c.worker);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await p.mustTake(5000);
      assert.equal(m.runId, 'run-a');
      assert.equal(m.deliveryCount, 1);
      got.push(dec(m.data));
      await m.ack();
    }
    assert.deepEqual(got, ['shard 0', 'shard 1', 'shard 2']);
    assert.equal(await new Puller(c.worker2).take(1500), null, 'acked work must not come back');
  });

  withCluster('work: a second publish with the same msgId is dropped', async (c) => {
    await c.coordinator.publishWork('run-a', 'run-a.1.0', enc('first'));
    await c.coordinator.publishWork('run-a', 'run-a.1.0', enc('second'));
    const p = new Puller(c.worker);
    const m = await p.mustTake(5000);
    assert.equal(dec(m.data), 'first');
    await m.ack();
    assert.equal(await p.take(1200), null);
  });

  withCluster('work: redelivered after the lease expires, deliveryCount 2', async (c) => {
    await c.coordinator.publishWork('run-a', 'run-a.2.0', enc('x'));
    const m1 = await new Puller(c.worker).mustTake(5000);
    const t0 = Date.now();
    const m2 = await new Puller(c.worker2).mustTake(5000);
    const waited = Date.now() - t0;
    assert.ok(waited >= 700, `redelivered after ${waited} ms, before the 1000 ms lease`);
    assert.equal(m2.deliveryCount, 2);
    assert.equal(dec(m2.data), 'x');
    assert.equal(m1.deliveryCount, 1);
    await m2.ack();
  });

  withCluster('work: nak redelivers, nak(delay) waits', async (c) => {
    await c.coordinator.publishWork('run-a', 'run-a.3.0', enc('y'));
    const p = new Puller(c.worker);
    const m1 = await p.mustTake(5000);
    let t0 = Date.now();
    m1.nak();
    const m2 = await p.mustTake(900);
    assert.ok(Date.now() - t0 < 900, 'nak() must redeliver before the lease');
    assert.equal(m2.deliveryCount, 2);
    t0 = Date.now();
    m2.nak(600);
    const m3 = await p.mustTake(3000);
    assert.ok(Date.now() - t0 >= 450, `nak(600) redelivered after ${Date.now() - t0} ms`);
    assert.equal(m3.deliveryCount, 3);
    await m3.ack();
  });

  withCluster('work: working() keeps the lease', async (c) => {
    await c.coordinator.publishWork('run-a', 'run-a.4.0', enc('z'));
    const m = await new Puller(c.worker).mustTake(5000);
    const other = new Puller(c.worker2);
    const timer = setInterval(() => m.working(), 300);
    try {
      assert.equal(await other.take(2500), null, 'work was redelivered while in progress');
    } finally {
      clearInterval(timer);
    }
    await m.ack();
    assert.equal(await other.take(1500), null, 'acked work must not come back');
  });

  withCluster(
    'work: not delivered again after maxDeliver',
    async (c) => {
      await c.coordinator.publishWork('run-a', 'run-a.5.0', enc('poison'));
      const p = new Puller(c.worker);
      const m1 = await p.mustTake(5000);
      m1.nak();
      const m2 = await p.mustTake(3000);
      assert.equal(m2.deliveryCount, 2);
      m2.nak();
      assert.equal(await p.take(2500), null, 'delivered a third time with maxDeliver 2');
    },
    { maxDeliver: 2 },
  );

  withCluster('work: term() drops the item', async (c) => {
    await c.coordinator.publishWork('run-a', 'run-a.6.0', enc('bad'));
    const p = new Puller(c.worker);
    (await p.mustTake(5000)).term();
    assert.equal(await p.take(1800), null);
  });

  withCluster('work: purgeWork drops only that run', async (c) => {
    await c.coordinator.publishWork('run-a', 'run-a.7.0', enc('a0'));
    await c.coordinator.publishWork('run-b', 'run-b.7.0', enc('b0'));
    await c.coordinator.publishWork('run-a', 'run-a.7.1', enc('a1'));
    await c.coordinator.purgeWork('run-a');
    const p = new Puller(c.worker);
    const m = await p.mustTake(5000);
    assert.equal(m.runId, 'run-b');
    await m.ack();
    assert.equal(await p.take(1200), null);
  });

  withCluster('results: one at a time, in arrival order, de-duplicated', async (c) => {
    await c.worker.publishResult('run-a', 'run-a.0.0', enc('r0'));
    await c.worker.publishResult('run-a', 'run-a.0.1', enc('r1'));
    await c.worker2.publishResult('run-a', 'run-a.0.1', enc('dup'));
    const got: ResultMessage[] = [];
    let active = 0;
    let maxActive = 0;
    const closer = await c.coordinator.consumeResults(async (m) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await sleep(20);
      got.push(m);
      active -= 1;
    });
    for (let i = 2; i < 6; i++) await c.worker.publishResult('run-b', `run-b.0.${i}`, enc(`r${i}`));
    const deadline = Date.now() + 5000;
    while (got.length < 6 && Date.now() < deadline) await sleep(20);
    await sleep(300);
    await closer.close();
    await closer.close();
    assert.deepEqual(
      got.map((m) => dec(m.data)),
      ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'],
    );
    assert.deepEqual(
      got.map((m) => m.msgId),
      ['run-a.0.0', 'run-a.0.1', 'run-b.0.2', 'run-b.0.3', 'run-b.0.4', 'run-b.0.5'],
    );
    assert.equal(got[3]?.runId, 'run-b');
    assert.equal(maxActive, 1);
  });

  withCluster('results and work above max_payload (3 MB) arrive intact', async (c) => {
    const big = new Uint8Array(randomBytes(3 * 1024 * 1024));
    await c.worker.publishResult('run-a', 'run-a.big.0', big);
    await c.coordinator.publishWork('run-a', 'run-a.big.w', big);
    const got: ResultMessage[] = [];
    const closer = await c.coordinator.consumeResults((m) => {
      got.push(m);
    });
    const deadline = Date.now() + 10_000;
    while (got.length < 1 && Date.now() < deadline) await sleep(20);
    await closer.close();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.msgId, 'run-a.big.0');
    assert.ok(Buffer.from(got[0]!.data).equals(Buffer.from(big)), 'big result differs');
    const w = await new Puller(c.worker).mustTake(10_000);
    assert.ok(Buffer.from(w.data).equals(Buffer.from(big)), 'big work item differs');
    await w.ack();
  });

  withCluster('params: 9 MB blob round trip, NotFoundError when missing', async (c) => {
    const blob = new Uint8Array(randomBytes(9 * 1024 * 1024 + 3));
    const original = blob.slice();
    await c.coordinator.putParams('run-a', 7, blob);
    blob.fill(0); // callers may reuse their buffer right after put
    const back = await c.worker.getParams('run-a', 7);
    assert.equal(back.byteLength, original.byteLength);
    assert.ok(Buffer.from(back).equals(Buffer.from(original)), '9 MB blob differs after round trip');
    await assert.rejects(c.worker.getParams('run-a', 8), NotFoundError);
    await c.coordinator.deleteParams('run-a', 7);
    await assert.rejects(c.worker.getParams('run-a', 7), NotFoundError);
    await c.coordinator.deleteParams('run-a', 99); // deleting what is absent is not an error
  });

  withCluster('run records: put, get, list', async (c) => {
    const rec = enc('record-a');
    await c.coordinator.putRun('run-a', rec);
    rec.fill(0);
    await c.coordinator.putRun('run-b', enc('record-b'));
    await c.coordinator.putRun('run-b', enc('record-b2'));
    assert.equal(dec((await c.worker.getRun('run-a'))!), 'record-a');
    assert.equal(dec((await c.worker.getRun('run-b'))!), 'record-b2');
    assert.equal(await c.worker.getRun('run-z'), null);
    assert.deepEqual((await c.worker.listRuns()).sort(), ['run-a', 'run-b']);
  });

  withCluster('checkpoints: put, get, list, delete', async (c) => {
    for (const step of [1000, 3000, 2000]) await c.coordinator.putCheckpoint('run-a', step, enc(`ckpt ${step}`));
    await c.coordinator.putCheckpoint('run-b', 5, enc('other run'));
    assert.deepEqual(await c.coordinator.listCheckpoints('run-a'), [1000, 2000, 3000]);
    assert.equal(dec(await c.coordinator.getCheckpoint('run-a', 2000)), 'ckpt 2000');
    await c.coordinator.deleteCheckpoint('run-a', 1000);
    assert.deepEqual(await c.coordinator.listCheckpoints('run-a'), [2000, 3000]);
    await assert.rejects(c.coordinator.getCheckpoint('run-a', 1000), NotFoundError);
    await c.coordinator.deleteCheckpoint('run-a', 1000);
    assert.deepEqual(await c.coordinator.listCheckpoints('run-c'), []);
  });

  withCluster('histories: put, get, never listed as a checkpoint', async (c) => {
    assert.equal(await c.coordinator.getHistory('run-h'), null);
    await c.coordinator.putCheckpoint('run-h', 10, enc('ckpt 10'));
    await c.coordinator.putHistory('run-h', enc('history 1'));
    await c.coordinator.putHistory('run-h', enc('history 2'));
    assert.equal(dec((await c.coordinator.getHistory('run-h'))!), 'history 2');
    assert.deepEqual(await c.coordinator.listCheckpoints('run-h'), [10]);
  });

  withCluster('pub/sub: NATS wildcards', async (c) => {
    const p = c.prefix;
    const got: Record<string, string[]> = { star: [], gt: [], exact: [] };
    const subs = [
      c.worker.subscribe(`${p}.events.*`, (d, s) => got.star!.push(`${s}=${dec(d)}`)),
      c.worker2.subscribe(`${p}.>`, (d, s) => got.gt!.push(`${s}=${dec(d)}`)),
      c.worker.subscribe(`${p}.events.run-a`, (d, s) => got.exact!.push(`${s}=${dec(d)}`)),
    ];
    await sleep(200); // subscriptions reach the server
    c.coordinator.publish(`${p}.events.run-a`, enc('1'));
    c.coordinator.publish(`${p}.events.run-a.deep`, enc('2'));
    c.coordinator.publish(`${p}.workers.heartbeat`, enc('3'));
    c.coordinator.publish(`other.events.run-a`, enc('4'));
    await sleep(300);
    assert.deepEqual(got.star, [`${p}.events.run-a=1`]);
    assert.deepEqual(got.gt, [`${p}.events.run-a=1`, `${p}.events.run-a.deep=2`, `${p}.workers.heartbeat=3`]);
    assert.deepEqual(got.exact, [`${p}.events.run-a=1`]);
    await subs[0]!.close();
    await subs[0]!.close();
    await sleep(100);
    c.coordinator.publish(`${p}.events.run-a`, enc('5'));
    await sleep(300);
    assert.deepEqual(got.star, [`${p}.events.run-a=1`], 'closed subscription still receives');
    assert.equal(got.exact?.length, 2);
  });

  withCluster('request/reply: answers, RequestTimeoutError without responder or in time', async (c) => {
    const p = c.prefix;
    const svc = c.coordinator.serve(`${p}.api.status`, (d) => Promise.resolve(enc(`status of ${dec(d)}`)));
    const slow = c.coordinator.serve(`${p}.api.export`, async () => {
      await sleep(1500);
      return enc('late');
    });
    await sleep(200);
    assert.equal(dec(await c.worker.request(`${p}.api.status`, enc('run-a'), 3000)), 'status of run-a');
    let t0 = Date.now();
    await assert.rejects(c.worker.request(`${p}.api.list`, enc(''), 2000), RequestTimeoutError);
    assert.ok(Date.now() - t0 < 2500);
    t0 = Date.now();
    await assert.rejects(c.worker.request(`${p}.api.export`, enc(''), 300), (err: unknown) => {
      assert.ok(err instanceof RequestTimeoutError);
      assert.equal(err.subject, `${p}.api.export`);
      return true;
    });
    assert.ok(Date.now() - t0 < 1200, 'timeout not honoured');
    await svc.close();
    await slow.close();
    await sleep(100);
    await assert.rejects(c.worker.request(`${p}.api.status`, enc('run-a'), 500), RequestTimeoutError);
  });

  withCluster('close: idempotent and ends consumeWork iterators', async (c) => {
    const p = new Puller(c.worker);
    assert.equal(await p.take(200), null);
    const t0 = Date.now();
    await Promise.all([c.worker.close(), c.worker.close()]);
    await c.worker.close();
    assert.ok(await p.ends(3000), 'consumeWork did not end on close');
    assert.ok(Date.now() - t0 < 3000);
    // the other transports keep working
    await c.coordinator.publishWork('run-a', 'run-a.9.0', enc('after'));
    const m = await new Puller(c.worker2).mustTake(5000);
    await m.ack();
  });

  withCluster('consumeWork: ends when its signal aborts', async (c) => {
    const ac = new AbortController();
    const p = new Puller(c.worker, ac.signal);
    assert.equal(await p.take(200), null);
    ac.abort();
    assert.ok(await p.ends(3000), 'consumeWork did not end on abort');
    await c.coordinator.publishWork('run-a', 'run-a.10.0', enc('after abort'));
    const m = await new Puller(c.worker2).mustTake(5000);
    assert.equal(m.deliveryCount, 1, 'an aborted consumer must not swallow a delivery');
    await m.ack();
  });
}

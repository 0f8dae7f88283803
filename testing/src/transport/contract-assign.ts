/**
 * The Assignments contract (the hot path of direct dispatch), part of the Transport contract
 * (contract.ts): every shard a worker is given of a run's round arrives in one assignment and is
 * taken as one batch, each shard with its attempt as its delivery count; a nak retries one shard
 * on that worker up to maxDeliver; results of several shards are one request whose reply acks each
 * of them; an assignment made while a worker's reply is held rides on that reply.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Closer, ResultMessage, Transport, WorkMessage } from '@metaloop/shared';
import type { ContractCluster } from './contract.js';

type WithCluster = (name: string, fn: (c: ContractCluster) => Promise<void>) => void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const shards = (...names: string[]) => names.map((n, attempt) => ({ data: enc(n), attempt }));

/** The next `n` batches assigned to `workerId` within `ms` (fewer when they do not come). */
async function take(t: Transport, workerId: string, n: number, ms: number, onBatch?: (b: WorkMessage[]) => void): Promise<WorkMessage[][]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const got: WorkMessage[][] = [];
  try {
    for await (const b of t.consumeAssigned(workerId, { signal: ac.signal, maxDeliver: 3 })) {
      got.push(b);
      onBatch?.(b);
      if (got.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return got;
}

const view = (b: WorkMessage[]) => b.map((m) => [m.runId, dec(m.data), m.deliveryCount]);

export function assignmentCases(withCluster: WithCluster): void {
  withCluster('assign: the shards of one assignment reach only the worker it names, as one batch, attempt + 1 as each delivery count', async (c) => {
    const mine = take(c.worker, 'w-1.host:a', 2, 3000);
    const other = take(c.worker2, 'w-2', 1, 1500);
    await sleep(200);
    c.coordinator.assign('w-1.host:a', 'run-d', shards('shard 0', 'shard 1', 'shard 2'));
    c.coordinator.assign('w-1.host:a', 'run-e', [{ data: enc('other run'), attempt: 4 }]);
    const got = await mine;
    assert.deepEqual(got.map(view), [
      [
        ['run-d', 'shard 0', 1],
        ['run-d', 'shard 1', 2],
        ['run-d', 'shard 2', 3],
      ],
      [['run-e', 'other run', 5]],
    ]);
    assert.deepEqual(await other, [], 'another worker must not see the shards');
  });

  withCluster('assign: a nak retries that shard alone on the same worker, up to maxDeliver deliveries', async (c) => {
    const counts: string[] = [];
    const got = take(c.worker, 'w-n', 4, 2500, (b) => {
      counts.push(view(b).map(([, name, n]) => `${String(name)}@${String(n)}`).join(' '));
      for (const m of b) if (dec(m.data) === 'x') m.nak(10);
    });
    await sleep(200);
    c.coordinator.assign('w-n', 'run-d', [{ data: enc('x'), attempt: 0 }, { data: enc('y'), attempt: 0 }]);
    await got;
    assert.deepEqual(counts, ['x@1 y@1', 'x@2', 'x@3'], 'redelivered alone with a growing count, and no more than maxDeliver (3) times');
  });

  withCluster('results: several results are one request; it resolves with an ack of each once the coordinator took them', async (c) => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const served = c.coordinator.serveResults(async (m) => {
      await gate;
      seen.push(`${m.runId} ${dec(m.data)}`);
      return dec(m.data) === 'late' ? { accepted: false, reason: 'stale', detail: 'too late' } : { accepted: true };
    });
    try {
      await sleep(150);
      let acked = false;
      const sending = c.worker.sendResults('w-1', 'run-d', [enc('r0'), enc('late'), enc('r2')], 5000).then((acks) => {
        acked = true;
        return acks;
      });
      await sleep(200);
      assert.equal(acked, false, 'acked before the coordinator took the results');
      release();
      assert.deepEqual(await sending, [{ accepted: true }, { accepted: false, reason: 'stale', detail: 'too late' }, { accepted: true }]);
      assert.deepEqual(seen, ['run-d r0', 'run-d late', 'run-d r2'], 'one handler call per result, in order');
    } finally {
      await served.close();
    }
    await assert.rejects(c.worker.sendResults('w-1', 'run-d', [enc('lost')], 300), 'no coordinator: the send fails (the worker retries)');
  });

  withCluster('results: results above max_payload (2 × 1.5 MB) are one send, each arrives intact, once', async (c) => {
    const big = [new Uint8Array(randomBytes(1536 * 1024 + 7)), new Uint8Array(randomBytes(1536 * 1024 + 1))];
    const seen: ResultMessage[] = [];
    const served = c.coordinator.serveResults((m) => {
      seen.push(m);
    });
    try {
      await sleep(150);
      const acks = await c.worker.sendResults('w-1', 'run-d', big, 10_000);
      assert.equal(acks.length, 2);
      assert.equal(seen.length, 2, 'the coordinator took each result once');
      // Each too big for one message: one request each (through the stash), handled in any order.
      assert.ok(seen.every((m) => m.runId === 'run-d'));
      for (let i = 0; i < 2; i++) {
        assert.equal(seen.filter((m) => Buffer.from(m.data).equals(Buffer.from(big[i]!))).length, 1, `big result ${i} arrived intact, once`);
      }
    } finally {
      await served.close();
    }
  });

  withCluster("results: an assignment made while the worker's reply is held rides on the reply", async (c) => {
    // What goes on the worker's assignment subject (the coordinator's Bus publishes there).
    const onSubject: string[] = [];
    const spy: Closer = c.worker2.subscribe(`${c.prefix}.assign.w-h.>`, (data) => onSubject.push(dec(data)));
    const served = c.coordinator.serveResults(() => ({ accepted: true }));
    const got = take(c.worker, 'w-h', 2, 4000);
    try {
      await sleep(200);
      c.coordinator.assign('w-h', 'run-h', shards('first'));
      await sleep(200);
      // The worker's result; the coordinator holds the reply, then assigns the next round.
      const sending = c.worker.sendResults('w-h', 'run-h', [enc('result')], 5000);
      await sleep(100);
      c.coordinator.assign('w-h', 'run-h', shards('next a', 'next b'));
      assert.deepEqual(await sending, [{ accepted: true }]);
      const batches = await got;
      assert.deepEqual(batches.map((b) => b.map((m) => dec(m.data))), [['first'], ['next a', 'next b']], 'the worker got the next assignment');
      await sleep(100);
      assert.equal(onSubject.length, 1, `only the first assignment went on the subject; the next rode on the reply: ${JSON.stringify(onSubject)}`);
    } finally {
      await served.close();
      await spy.close();
    }
  });

  withCluster("assign: once another coordinator session assigns work of a run, the old session's shards are dropped", async (c) => {
    const got: WorkMessage[] = [];
    const dropped: number[] = [];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 4000);
    let first!: WorkMessage;
    const gotFirst = new Promise<void>((resolve) => {
      void (async () => {
        try {
          for await (const b of c.worker.consumeAssigned('w-s', { signal: ac.signal, maxDeliver: 5, onStale: (_run, n) => dropped.push(n) })) {
            got.push(...b);
            if (got.length === 1) {
              first = b[0]!;
              resolve();
              // Busy with the first shard while the rest arrive (as a worker computing it).
              await sleep(400);
              // Its coordinator is gone by now: a retry of it must not come back.
              first.nak(10);
            }
          }
        } finally {
          clearTimeout(timer);
        }
      })();
    });
    await sleep(200);
    c.coordinator.assign('w-s', 'run-s', shards('old 0'), 'sess1');
    await gotFirst;
    c.coordinator.assign('w-s', 'run-s', shards('old 1'), 'sess1');
    c.coordinator.assign('w-s', 'run-t', shards('other run'), 'sess1');
    await sleep(100);
    assert.equal(first.session, 'sess1');
    assert.equal(first.stale?.(), false, 'no other session yet');
    c.coordinator.assign('w-s', 'run-s', shards('new 0'), 'sess2');
    await sleep(100);
    assert.equal(first.stale?.(), true, 'a new session assigned work of the run');
    c.coordinator.assign('w-s', 'run-s', shards('old late', 'old later'), 'sess1'); // a zombie of the old session
    await sleep(1000);
    ac.abort();
    assert.deepEqual(
      got.map((m) => `${m.runId} ${dec(m.data)} ${m.session}`),
      ['run-s old 0 sess1', 'run-t other run sess1', 'run-s new 0 sess2'],
      "the old session's queued shard, its retry and its late shards are dropped; other runs keep theirs",
    );
    assert.deepEqual(dropped, [1, 2], 'the queued shard and the late ones are reported dropped');
  });
}

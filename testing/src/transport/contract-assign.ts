/**
 * The Assignments contract (the hot path of direct dispatch), part of the Transport contract
 * (contract.ts): a shard reaches only the worker it was assigned to, with the attempt as its
 * delivery count; a nak retries it on that worker up to maxDeliver; a result is one request whose
 * resolution is the coordinator's ack.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ResultMessage, Transport, WorkMessage } from '@metaloop/shared';
import type { ContractCluster } from './contract.js';

type WithCluster = (name: string, fn: (c: ContractCluster) => Promise<void>) => void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** The next `n` assigned shards of `workerId` within `ms` (fewer when they do not come). */
async function take(t: Transport, workerId: string, n: number, ms: number, onMessage?: (m: WorkMessage) => void): Promise<WorkMessage[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const got: WorkMessage[] = [];
  try {
    for await (const m of t.consumeAssigned(workerId, { signal: ac.signal, maxDeliver: 3 })) {
      got.push(m);
      onMessage?.(m);
      if (got.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return got;
}

export function assignmentCases(withCluster: WithCluster): void {
  withCluster('assign: a shard reaches only the worker it names, attempt + 1 as its delivery count', async (c) => {
    const mine = take(c.worker, 'w-1.host:a', 2, 3000);
    const other = take(c.worker2, 'w-2', 1, 1500);
    await sleep(200);
    c.coordinator.assign('w-1.host:a', 'run-d', 0, enc('shard 0'));
    c.coordinator.assign('w-1.host:a', 'run-d', 2, enc('shard 1'));
    const got = await mine;
    assert.deepEqual(got.map((m) => [m.runId, dec(m.data), m.deliveryCount]), [
      ['run-d', 'shard 0', 1],
      ['run-d', 'shard 1', 3],
    ]);
    assert.deepEqual(await other, [], 'another worker must not see the shard');
  });

  withCluster('assign: a nak retries the shard on the same worker, up to maxDeliver deliveries', async (c) => {
    const counts: number[] = [];
    const got = take(c.worker, 'w-n', 5, 2500, (m) => {
      counts.push(m.deliveryCount);
      m.nak(10);
    });
    await sleep(200);
    c.coordinator.assign('w-n', 'run-d', 0, enc('x'));
    await got;
    assert.deepEqual(counts, [1, 2, 3], 'redelivered with a growing count, and no more than maxDeliver (3) times');
  });

  withCluster('results: a result is one request; it resolves once the coordinator took it', async (c) => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const served = c.coordinator.serveResults(async (m) => {
      await gate;
      seen.push(`${m.runId} ${dec(m.data)}`);
    });
    try {
      await sleep(150);
      let acked = false;
      const sending = c.worker.sendResult('run-d', 'run-d.0.1.w-1.abc.1', enc('r'), 5000).then(() => (acked = true));
      await sleep(200);
      assert.equal(acked, false, 'acked before the coordinator took the result');
      release();
      await sending;
      assert.deepEqual(seen, ['run-d r']);
    } finally {
      await served.close();
    }
    await assert.rejects(c.worker.sendResult('run-d', 'run-d.0.2.w-1.abc.2', enc('lost'), 300), 'no coordinator: the send fails (the worker retries)');
  });

  withCluster('results: a result above max_payload (3 MB) is one send, arrives intact, once', async (c) => {
    const big = new Uint8Array(randomBytes(3 * 1024 * 1024 + 7));
    const seen: ResultMessage[] = [];
    const served = c.coordinator.serveResults((m) => {
      seen.push(m);
    });
    try {
      await sleep(150);
      await c.worker.sendResult('run-d', 'run-d.0.3.w-1.abc.3', big, 10_000);
      assert.equal(seen.length, 1, 'the coordinator took the result once');
      assert.equal(seen[0]!.runId, 'run-d');
      assert.equal(seen[0]!.msgId, 'run-d.0.3.w-1.abc.3');
      assert.ok(Buffer.from(seen[0]!.data).equals(Buffer.from(big)), 'the big result differs');
    } finally {
      await served.close();
    }
  });

  withCluster('assign: once another coordinator session assigns work of a run, the old session\'s shards are dropped', async (c) => {
    const got: WorkMessage[] = [];
    const dropped: number[] = [];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 4000);
    let first!: WorkMessage;
    const gotFirst = new Promise<void>((resolve) => {
      void (async () => {
        try {
          for await (const m of c.worker.consumeAssigned('w-s', { signal: ac.signal, maxDeliver: 5, onStale: (_run, n) => dropped.push(n) })) {
            got.push(m);
            if (got.length === 1) {
              first = m;
              resolve();
              // Busy with the first shard while the rest arrive (as a worker computing it).
              await sleep(400);
              // Its coordinator is gone by now: a retry of it must not come back.
              m.nak(10);
            }
          }
        } finally {
          clearTimeout(timer);
        }
      })();
    });
    await sleep(200);
    c.coordinator.assign('w-s', 'run-s', 0, enc('old 0'), 'sess1');
    await gotFirst;
    c.coordinator.assign('w-s', 'run-s', 0, enc('old 1'), 'sess1');
    c.coordinator.assign('w-s', 'run-t', 0, enc('other run'), 'sess1');
    await sleep(100);
    assert.equal(first.session, 'sess1');
    assert.equal(first.stale?.(), false, 'no other session yet');
    c.coordinator.assign('w-s', 'run-s', 0, enc('new 0'), 'sess2');
    await sleep(100);
    assert.equal(first.stale?.(), true, 'a new session assigned work of the run');
    c.coordinator.assign('w-s', 'run-s', 1, enc('old late'), 'sess1'); // a zombie of the old session
    await sleep(1000);
    ac.abort();
    assert.deepEqual(
      got.map((m) => `${m.runId} ${dec(m.data)} ${m.session}`),
      ['run-s old 0 sess1', 'run-t other run sess1', 'run-s new 0 sess2'],
      'the old session\'s queued shard, its retry and its late shard are dropped; other runs keep theirs',
    );
    assert.deepEqual(dropped, [1, 1], 'the queued shard and the late one are reported dropped');
  });
}

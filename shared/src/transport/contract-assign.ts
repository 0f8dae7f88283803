/**
 * The Assignments contract (the hot path of direct dispatch), part of the Transport contract
 * (contract.ts): a shard reaches only the worker it was assigned to, with the attempt as its
 * delivery count; a nak retries it on that worker up to maxDeliver; a result is one request whose
 * resolution is the coordinator's ack.
 */
import assert from 'node:assert/strict';
import type { Transport, WorkMessage } from '../transport.js';
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
}

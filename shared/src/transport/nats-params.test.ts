import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { after, before, describe, test } from 'node:test';
import { decodeTensorBundle, encodeTensorBundle } from '../codec.js';
import { startNatsServer, type NatsServer } from '../nats-server.js';
import { NatsTransport } from './nats.js';

let server: NatsServer | undefined;
let raw: NatsConnection | undefined;
let cases = 0;
const opened: NatsTransport[] = [];

before(async () => {
  server = await startNatsServer();
  raw = await connect({ servers: server.url });
});
after(async () => {
  await Promise.allSettled(opened.map((t) => t.close()));
  await raw?.close();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(prefix: string, extra: Parameters<typeof NatsTransport.create>[0] = {}): Promise<NatsTransport> {
  assert.ok(server, 'nats-server did not start');
  const t = await NatsTransport.create({ servers: server.url, prefix, ...extra });
  opened.push(t);
  return t;
}

/** A coordinator and a worker on their own prefix; the worker has subscribed to `run` (late join of v0). */
async function pair(chunkBytes = 4096): Promise<{ prefix: string; coordinator: NatsTransport; worker: NatsTransport }> {
  const prefix = `p${++cases}`;
  const coordinator = await open(prefix, { paramsChunkBytes: chunkBytes });
  const worker = await open(prefix, { paramsChunkBytes: chunkBytes });
  return { prefix, coordinator, worker };
}

const blob = (n: number) => new Uint8Array(randomBytes(n));
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('NatsTransport parameter broadcast', { concurrency: true }, () => {
  test('a subscribed worker is served from the broadcast: one aligned buffer, floats decode as a view', async () => {
    const { coordinator, worker } = await pair();
    const layout = [{ name: 'w', shape: [5000] }, { name: 'b', shape: [3] }];
    const v0 = encodeTensorBundle({ layout, data: Float32Array.from({ length: 5003 }, (_, i) => i * 0.5) });
    await coordinator.putParams('run-a', 0, v0);
    // First fetch of the run: the worker subscribes now; v0 went out just before (from the store,
    // or from the broadcast when the subscription beat the chunks to the server).
    assert.ok(same(await worker.getParams('run-a', 0), v0));
    const s0 = { ...worker.paramsBroadcast.stats };
    assert.equal(s0.served + s0.fallbacks, 1);
    await sleep(100); // the subscription reaches the server
    const data = Float32Array.from({ length: 5003 }, (_, i) => -i);
    const v1 = encodeTensorBundle({ layout, data });
    await coordinator.putParams('run-a', 1, v1); // 20 KB in 4 KiB chunks
    const got = await worker.getParams('run-a', 1);
    assert.ok(same(got, v1));
    assert.equal(worker.paramsBroadcast.stats.served, s0.served + 1, 'v1 came from the broadcast');
    assert.equal(got.byteOffset, 0);
    const decoded = decodeTensorBundle(got, layout);
    assert.equal(decoded.data.buffer, got.buffer, 'zero-copy decode');
    assert.equal(decoded.data[5002], -5002);
    // Another late joiner asks for the durable copy, which the publisher writes for it.
    const late = await open(worker.options.prefix);
    assert.ok(same(await late.getParams('run-a', 1), v1));
    assert.equal(late.paramsBroadcast.stats.served, 0);
    await coordinator.deleteParams('run-a', 0);
  });

  test('a late-joining worker asks the publisher, which writes the durable copy it then reads', async () => {
    const { prefix, coordinator } = await pair();
    const v = blob(3 * 1024 * 1024 + 5);
    await coordinator.putParams('run-b', 4, v); // broadcast only: nothing stored
    const late = await open(prefix);
    const got = await late.getParams('run-b', 4);
    assert.ok(same(got, v));
    assert.deepEqual({ ...late.paramsBroadcast.stats }, { served: 0, fallbacks: 1, lost: 0, restarts: 0 });
    assert.deepEqual({ ...coordinator.paramStoreStats }, { durablePuts: 0, askedPuts: 1 });
    // A second reader of the same version: the copy is there already, not written again.
    assert.ok(same(await (await open(prefix)).getParams('run-b', 4), v));
    assert.equal(coordinator.paramStoreStats.askedPuts, 1);
  });

  test('durable copies off the hot path: none per put, one per durable put or version asked for; deleted with their version', async () => {
    const { prefix, coordinator } = await pair();
    const versions = Array.from({ length: 12 }, () => blob(20_000));
    const os = await new Objm(raw!).open(coordinator.options.subjects.paramsBucket);
    /** The stored versions of run-f once they are as `expected` (background puts and deletes settle), or as they are after 5 s. */
    const stored = async (expected: string[]) => {
      for (let waited = 0; ; waited += 50) {
        const names = (await os.list()).filter((i) => !i.deleted && i.name.startsWith('run-f/')).map((i) => i.name).sort();
        if (JSON.stringify(names) === JSON.stringify(expected) || waited > 5000) return names;
        await sleep(50);
      }
    };
    for (let v = 0; v < 10; v++) {
      await coordinator.putParams('run-f', v, versions[v]!, { durable: v === 5 });
      if (v >= 2) await coordinator.deleteParams('run-f', v - 2);
    }
    await coordinator.putParams('run-f', 10, versions[10]!);
    await sleep(300);
    assert.deepEqual(await stored(['run-f/5']), ['run-f/5'], 'only the durable version is stored (kept as the latest durable one)');
    // A late reader of v9: written for it; deleting v9 deletes that copy, never the latest durable one.
    const late = await open(prefix);
    assert.ok(same(await late.getParams('run-f', 9), versions[9]!));
    assert.deepEqual(await stored(['run-f/5', 'run-f/9']), ['run-f/5', 'run-f/9']);
    await coordinator.deleteParams('run-f', 9);
    await coordinator.deleteParams('run-f', 5);
    assert.deepEqual(await stored(['run-f/5']), ['run-f/5']);
    // A newer durable version replaces it.
    await coordinator.putParams('run-f', 11, versions[11]!, { durable: true });
    assert.deepEqual(await stored(['run-f/11']), ['run-f/11']);
    assert.deepEqual({ ...coordinator.paramStoreStats }, { durablePuts: 2, askedPuts: 1 });
    // A version the publisher no longer holds and never stored: not found, saying why.
    await assert.rejects((await open(prefix)).getParams('run-f', 7), /params not found: run-f\/7 .*no longer holds it/);
  });

  test('a lost chunk (or a version that stops arriving) falls back to the Object Store', async () => {
    const { prefix, worker } = await pair();
    // The true versions are stored without broadcasting; a damaged broadcast is sent by hand.
    const storeOnly = await open(prefix, { paramsBroadcast: false });
    const v2 = blob(10_000);
    const v3 = blob(10_000);
    await storeOnly.putParams('run-c', 2, v2);
    await storeOnly.putParams('run-c', 3, v3);
    assert.ok(same(await worker.getParams('run-c', 2), v2)); // subscribes to the run (a late join: the store)
    await sleep(100);
    const subject = (v: number, i: number, count: number, total: number) => `${prefix}.params.run-c.${v}.${i}.${count}.${total}`;
    // Version 2 in 3 chunks of 3334 bytes, chunk 1 lost.
    raw!.publish(subject(2, 0, 3, 10_000), blob(3334));
    raw!.publish(subject(2, 2, 3, 10_000), blob(3332));
    await raw!.flush();
    await sleep(50);
    assert.ok(same(await worker.getParams('run-c', 2), v2), 'gap: the store copy, not the damaged broadcast');
    assert.equal(worker.paramsBroadcast.stats.lost, 1);
    // Version 3: the first chunk arrives, the rest never does: bounded wait, then the store.
    raw!.publish(subject(3, 0, 2, 10_000), blob(5000));
    await raw!.flush();
    await sleep(50);
    const t0 = Date.now();
    assert.ok(same(await worker.getParams('run-c', 3), v3));
    assert.ok(Date.now() - t0 < 3000, `fallback took ${Date.now() - t0} ms`);
    assert.equal(worker.paramsBroadcast.stats.served, 0);
  });

  test('a restarted publisher resuming at an older version is served from the broadcast again', async () => {
    // Issue 14 item 3: a coordinator killed at v6 and resumed from its checkpoint at v3 broadcasts
    // v3, v4, … again; a worker that saw v6 must take them (not drop them as older than the newest
    // and then miss the store copy, whose put is still delayed).
    const { prefix, coordinator } = await pair();
    // A long grace: getParams here runs right after putParams returns, before the new publisher
    // flushed its chunks (a worker gets the shard after them); on a loaded box 25 ms is too short.
    const worker = await open(prefix, { paramsChunkBytes: 4096, paramsGraceMs: 2000 });
    await coordinator.putParams('run-e', 4, blob(10_000));
    await worker.getParams('run-e', 4); // subscribes
    await sleep(100);
    for (const v of [5, 6]) {
      const b = blob(10_000);
      await coordinator.putParams('run-e', v, b);
      assert.ok(same(await worker.getParams('run-e', v), b));
    }
    const served = worker.paramsBroadcast.stats.served;
    const fallbacks = worker.paramsBroadcast.stats.fallbacks;
    const resumed = await open(prefix, { paramsChunkBytes: 4096 });
    for (const v of [3, 4, 5]) {
      const b = blob(10_000);
      await resumed.putParams('run-e', v, b);
      assert.ok(same(await worker.getParams('run-e', v), b), `v${v} of the new session`);
    }
    assert.equal(worker.paramsBroadcast.stats.restarts, 1, 'one publisher restart seen');
    assert.equal(worker.paramsBroadcast.stats.fallbacks, fallbacks, 'no resumed version read from the store');
    assert.equal(worker.paramsBroadcast.stats.served, served + 3);
  });

  test('close() waits for the background durable put: the version is durable afterwards', async () => {
    const { prefix, coordinator } = await pair(64 * 1024);
    const v = blob(2 * 1024 * 1024);
    await coordinator.putParams('run-d', 1, v, { durable: true });
    await coordinator.close();
    const reader = await open(prefix);
    assert.ok(same(await reader.getParams('run-d', 1), v));
  });
});

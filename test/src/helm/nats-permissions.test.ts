/**
 * deploy/nats/: the per-role permissions, checked against a real nats-server (Debian 2.9.10) with
 * JetStream, using deploy/nats/nats-test.conf (same roles as the production config, fixed
 * passwords). Each role does what it needs (coordinator and worker through the real NatsTransport)
 * and is refused what it must not do; clients without credentials are refused.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findNatsServer, NatsTransport } from '@metaloop/shared';
import { freePort, permissionError } from '@metaloop/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { REPO_ROOT } from './harness.js';

const CONF = path.join(REPO_ROOT, 'deploy', 'nats', 'nats-test.conf');
const PASSWORDS = { coordinator: 'coordinator-test-password', worker: 'worker-test-password', cli: 'cli-test-password' } as const;
type Role = keyof typeof PASSWORDS;

let server: ChildProcess | undefined;
let storeDir = '';
let url = '';
const opened: Array<{ close(): Promise<unknown> }> = [];

async function startServer(): Promise<void> {
  const port = await freePort();
  storeDir = await mkdtemp(path.join(tmpdir(), 'metaloop-nats-perm-'));
  url = `nats://127.0.0.1:${port}`;
  const proc = spawn(findNatsServer(), ['-c', CONF, '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server = proc;
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!log.includes('Server is ready')) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode}) with deploy/nats/nats-test.conf:\n${log}`);
    if (Date.now() > deadline) throw new Error(`nats-server did not become ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function raw(role: Role): Promise<NatsConnection> {
  const nc = await connect({ servers: url, user: role, pass: PASSWORDS[role], reconnect: false });
  opened.push(nc);
  return nc;
}

async function transport(role: 'coordinator' | 'worker'): Promise<NatsTransport> {
  const t = await NatsTransport.create({ servers: url, user: role, pass: PASSWORDS[role], leaseMs: 30_000, maxReconnectAttempts: 0 });
  opened.push(t);
  return t;
}

/** Resolves once the server has refused `action` for `nc` for lack of permissions. */
async function expectDenied(nc: NatsConnection, action: () => unknown, what: string): Promise<void> {
  const error = await permissionError(nc, action);
  assert.match(error, /permission/i, `${what} should be refused, got: ${error || 'success'}`);
}

before(async () => {
  await startServer();
});

after(async () => {
  for (const c of opened.reverse()) await c.close().catch(() => undefined);
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
  }
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

describe('deploy/nats permissions (nats-server with nats-test.conf)', () => {
  it('refuses clients without or with wrong credentials', async () => {
    await assert.rejects(connect({ servers: url, reconnect: false }), /authorization|auth/i);
    await assert.rejects(connect({ servers: url, user: 'worker', pass: 'wrong', reconnect: false }), /authorization|auth/i);
  });

  it('lets coordinator and worker run the work / result / params / runs / events flow', async () => {
    const coord = await transport('coordinator');
    const worker = await transport('worker');
    const enc = new TextEncoder();

    await coord.putParams('perm-run', 0, enc.encode('theta-0'));
    await coord.putRun('perm-run', enc.encode('run-record'));
    await coord.publishWork('perm-run', 'perm-run.0.0', enc.encode('shard-0'));

    // Worker: pull the shard, read params and the run record, publish the result, ack, heartbeat.
    const ac = new AbortController();
    let got: Uint8Array | undefined;
    for await (const m of worker.consumeWork({ signal: ac.signal, pollMs: 1000 })) {
      got = m.data;
      assert.equal(new TextDecoder().decode(await worker.getParams('perm-run', 0)), 'theta-0');
      assert.equal(new TextDecoder().decode((await worker.getRun('perm-run')) ?? new Uint8Array()), 'run-record');
      await worker.publishResult('perm-run', 'perm-run.0.0', enc.encode('result-0'));
      await m.ack();
      ac.abort();
      break;
    }
    assert.equal(new TextDecoder().decode(got ?? new Uint8Array()), 'shard-0');

    const heartbeats: string[] = [];
    const hb = coord.subscribe('metaloop.workers.heartbeat', (d) => heartbeats.push(new TextDecoder().decode(d)));
    const results: string[] = [];
    const rc = await coord.consumeResults((m) => {
      results.push(new TextDecoder().decode(m.data));
    });
    await new Promise((r) => setTimeout(r, 200));
    worker.publish('metaloop.workers.heartbeat', enc.encode('w1'));
    const deadline = Date.now() + 10_000;
    while ((results.length === 0 || heartbeats.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await rc.close();
    await hb.close();
    assert.deepEqual(results, ['result-0']);
    assert.deepEqual(heartbeats, ['w1']);
  });

  it('lets coordinator and worker run the hot path (direct assignment, result request, ack reply; a big result via blobs)', async () => {
    const coord = await transport('coordinator');
    const worker = await transport('worker');
    const enc = new TextEncoder();
    const results: string[] = [];
    const bigResults: Uint8Array[] = [];
    const served = coord.serveResults((m) => {
      if (m.data.byteLength > 1000) bigResults.push(m.data);
      else results.push(`${m.runId}:${new TextDecoder().decode(m.data)}`);
    });
    const ac = new AbortController();
    const shards = worker.consumeAssigned('perm-worker.1', { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 200)); // the subscription is registered on the server
    coord.assign('perm-worker.1', 'perm-run', [{ data: enc.encode('shard-hot'), attempt: 0 }]);
    let got: Uint8Array | undefined;
    for await (const batch of shards) {
      got = batch[0]!.data;
      assert.equal(batch[0]!.runId, 'perm-run');
      // The coordinator's reply is the ack: sendResults resolves only once it took the result.
      await worker.sendResults('perm-worker.1', 'perm-run', [enc.encode('result-hot')], 5000);
      ac.abort();
      break;
    }
    // Above the inline limit: the worker puts it in the blobs store, the coordinator reads and deletes it.
    const big = Uint8Array.from({ length: 1200 * 1024 }, (_, i) => (i * 7 + 3) & 0xff);
    await worker.sendResults('perm-worker.1', 'perm-run', [big], 10_000);
    await served.close();
    assert.equal(bigResults.length, 1);
    assert.deepEqual(bigResults[0], big);
    assert.equal(new TextDecoder().decode(got ?? new Uint8Array()), 'shard-hot');
    assert.deepEqual(results, ['perm-run:result-hot']);
  });

  it('lets both roles pass payloads above the inline limit through the blobs object store', async () => {
    const coord = await transport('coordinator');
    const worker = await transport('worker');
    const big = (seed: number) => Uint8Array.from({ length: 900 * 1024 }, (_, i) => (i * 31 + seed) & 0xff);
    await coord.publishWork('perm-big', 'perm-big.0.0', big(1));
    const ac = new AbortController();
    for await (const m of worker.consumeWork({ signal: ac.signal, pollMs: 1000 })) {
      assert.deepEqual(m.data, big(1));
      await worker.publishResult('perm-big', 'perm-big.0.0', big(2));
      await m.ack();
      ac.abort();
      break;
    }
    const results: Uint8Array[] = [];
    const rc = await coord.consumeResults((m) => {
      if (m.runId === 'perm-big') results.push(m.data);
    });
    const deadline = Date.now() + 10_000;
    while (results.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await rc.close();
    assert.equal(results.length, 1);
    assert.deepEqual(results[0], big(2));
  });

  it('lets the CLI call the API and watch events, and nothing else', async () => {
    const coord = await transport('coordinator');
    const served = coord.serve('metaloop.api.list', (d) => Promise.resolve(new TextEncoder().encode(`listed:${new TextDecoder().decode(d)}`)));
    const cli = await raw('cli');
    await new Promise((r) => setTimeout(r, 200));
    const reply = await cli.request('metaloop.api.list', new TextEncoder().encode('q'), { timeout: 5000 });
    assert.equal(reply.string(), 'listed:q');

    const events: string[] = [];
    const sub = cli.subscribe('metaloop.events.>', { callback: (_e, m) => {
      events.push(m.string());
    } });
    await cli.flush();
    coord.publish('metaloop.events.perm-run', new TextEncoder().encode('step 1'));
    const deadline = Date.now() + 5000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(events, ['step 1']);
    sub.unsubscribe();
    await served.close();

    const cli2 = await raw('cli');
    await expectDenied(cli2, async () => {
      cli2.subscribe('metaloop.work.>');
      await cli2.flush();
    }, 'cli subscribing to work');
    const cli3 = await raw('cli');
    await expectDenied(cli3, async () => {
      const kv = await new Kvm(jetstream(cli3)).open('runs');
      await kv.get('perm-run');
    }, 'cli reading KV runs');
    const cli4 = await raw('cli');
    await expectDenied(cli4, async () => {
      cli4.publish('metaloop.results.perm-run', new TextEncoder().encode('forged'));
      await cli4.flush();
    }, 'cli publishing a result');
  });

  it('refuses workers what belongs to the coordinator', async () => {
    const w1 = await raw('worker');
    await expectDenied(w1, () => jetstream(w1).publish('metaloop.work.perm-run', new TextEncoder().encode('forged'), { timeout: 1000 }), 'worker publishing work');
    const w2 = await raw('worker');
    await expectDenied(w2, async () => {
      const kv = await new Kvm(jetstream(w2)).open('runs');
      await kv.put('perm-run', 'forged');
    }, 'worker writing a run record');
    const w3 = await raw('worker');
    await expectDenied(w3, async () => {
      w3.subscribe('metaloop.api.>');
      await w3.flush();
    }, 'worker serving the API');
    const w4 = await raw('worker');
    await expectDenied(w4, async () => {
      w4.publish('$JS.API.STREAM.DELETE.METALOOP_WORK');
      await w4.flush();
    }, 'worker deleting the work stream');
    const w5 = await raw('worker');
    await expectDenied(w5, async () => {
      w5.publish('metaloop.assign.other-worker.perm-run.0', new TextEncoder().encode('forged'));
      await w5.flush();
    }, 'worker assigning shards');
    const w6 = await raw('worker');
    await expectDenied(w6, async () => {
      w6.subscribe('metaloop.hot.results.>');
      await w6.flush();
    }, "worker reading other workers' results");
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { after, before, describe, test } from 'node:test';
import { ConnectionError, PermissionError } from '../errors.js';
import { freePort, startNatsServer, type NatsServer } from '../nats-server.js';
import { NatsTransport } from './nats.js';
import { compileNatsTransportOptions } from './nats-options.js';

// The Transport contract's NATS run: testing/src/transport/nats.test.ts (against the shipped dist).
let server: NatsServer | undefined;

before(async () => {
  server = await startNatsServer();
});
after(async () => {
  await server?.stop();
});

describe('NatsTransport specifics', { concurrency: true }, () => {
  test('a closed port gives a one-line ConnectionError naming the URL, quickly', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const t0 = Date.now();
    await assert.rejects(NatsTransport.create({ servers: url, connectTimeoutMs: 1000 }), (err: unknown) => {
      assert.ok(err instanceof ConnectionError, `got ${String(err)}`);
      assert.ok(err.message.includes(url), err.message);
      assert.ok(!err.message.includes('\n'), 'message must be one line');
      assert.match(err.message, /METALOOP_NATS_URL|--nats/);
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  test('wrong credentials give PermissionError; right ones connect', async () => {
    const secured = await startNatsServer({ args: ['--user', 'alice', '--pass', 's3cret'] });
    try {
      await assert.rejects(NatsTransport.create({ servers: secured.url, user: 'alice', pass: 'nope' }), PermissionError);
      await assert.rejects(NatsTransport.create({ servers: secured.url }), PermissionError);
      const t = await NatsTransport.create({ servers: secured.url, user: 'alice', pass: 's3cret', prefix: 'auth' });
      await t.putRun('run-a', new Uint8Array([1]));
      assert.deepEqual(await t.listRuns(), ['run-a']);
      await t.close();
    } finally {
      await secured.stop();
    }
  });

  test('token and nkey seed file authenticate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metaloop-auth-'));
    const user = nkeys.createUser();
    const seedFile = join(dir, 'worker.nk');
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()) + '\n');
    const conf = join(dir, 'nats.conf');
    writeFileSync(conf, `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }\n`);
    const byToken = await startNatsServer({ args: ['--auth', 'tok3n'] });
    const byNkey = await startNatsServer({ configFile: conf });
    try {
      await assert.rejects(NatsTransport.create({ servers: byToken.url, token: 'wrong' }), PermissionError);
      const t1 = await NatsTransport.create({ servers: byToken.url, token: 'tok3n' });
      assert.deepEqual(await t1.listRuns(), []);
      await t1.close();
      await assert.rejects(NatsTransport.create({ servers: byNkey.url }), PermissionError);
      const t2 = await NatsTransport.create({ servers: byNkey.url, credsFile: seedFile });
      await t2.putRun('run-n', new Uint8Array([4]));
      assert.deepEqual(await t2.listRuns(), ['run-n']);
      await t2.close();
    } finally {
      await Promise.allSettled([byToken.stop(), byNkey.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('creation tolerates several processes racing to create the same resources', async () => {
    assert.ok(server);
    const url = server.url;
    const ts = await Promise.all(
      Array.from({ length: 4 }, (_, i) => NatsTransport.create({ servers: url, prefix: 'race', leaseMs: 1000 + i * 500 })),
    );
    await ts[0]!.publishWork('run-a', 'race.0.0', new Uint8Array([7]));
    const it = ts[3]!.consumeWork()[Symbol.asyncIterator]();
    const m = (await it.next()).value as { data: Uint8Array; ack(): Promise<void> };
    assert.deepEqual([...m.data], [7]);
    await m.ack();
    await Promise.all(ts.map((t) => t.close()));
  });

  test('survives a nats-server restart (JetStream state kept, clients reconnect)', async () => {
    const s = await startNatsServer();
    const t = await NatsTransport.create({ servers: s.url, prefix: 'chaos', reconnectTimeWaitMs: 200 });
    try {
      await t.putRun('run-a', new Uint8Array([1, 2, 3]));
      await t.publishWork('run-a', 'chaos.0.0', new Uint8Array([9]));
      await s.restart({ kill: true });
      assert.deepEqual([...((await t.getRun('run-a')) ?? [])], [1, 2, 3]);
      const it = t.consumeWork()[Symbol.asyncIterator]();
      const m = (await it.next()).value as { data: Uint8Array; ack(): Promise<void> };
      assert.deepEqual([...m.data], [9]);
      await m.ack();
      // a pull in flight across a second restart, work published while reconnecting
      const pending = it.next();
      await s.restart();
      await t.publishWork('run-a', 'chaos.0.1', new Uint8Array([10]));
      const m2 = (await pending).value as { data: Uint8Array; deliveryCount: number; ack(): Promise<void> };
      assert.deepEqual([...m2.data], [10]);
      await m2.ack();
    } finally {
      await t.close();
      await s.stop();
    }
  });

  test('options: defaults and validation', () => {
    const o = compileNatsTransportOptions({ servers: 'nats://a:1, nats://b:2' });
    assert.deepEqual(o.servers, ['nats://a:1', 'nats://b:2']);
    assert.equal(o.prefix, 'metaloop');
    assert.equal(o.leaseMs, 30_000);
    assert.equal(o.maxDeliver, 5);
    assert.equal(o.maxReconnectAttempts, -1);
    assert.throws(() => compileNatsTransportOptions({ leaseMs: 0 }), /leaseMs/);
    assert.throws(() => compileNatsTransportOptions({ token: 't', user: 'u', pass: 'p' }), /token/);
  });
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { test } from 'node:test';
import { findNatsServer, NatsServerError, startNatsServer } from './nats-server.js';

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

test('startNatsServer: free loopback port, restart keeps port and store, stop cleans up', async () => {
  const a = await startNatsServer();
  const b = await startNatsServer();
  try {
    assert.notEqual(a.port, b.port);
    assert.equal(a.url, `nats://127.0.0.1:${a.port}`);
    assert.ok(await accepts(a.port));
    assert.ok(existsSync(a.storeDir));
    const pid = a.pid;
    await a.restart({ kill: true });
    assert.notEqual(a.pid, pid);
    assert.ok(await accepts(a.port), 'same port after restart');
    assert.ok(existsSync(a.storeDir));
  } finally {
    await Promise.all([a.stop(), a.stop(), b.stop()]);
  }
  assert.equal(await accepts(a.port), false, 'still listening after stop');
  assert.equal(existsSync(a.storeDir), false, 'temp store dir left behind');
  await a.stop();
});

test('a missing nats-server binary names the install command', () => {
  assert.throws(() => findNatsServer('/nonexistent/nats-server'), NatsServerError);
  assert.throws(() => findNatsServer(undefined, ['/nonexistent']), /apt-get install -y nats-server/);
  assert.ok(findNatsServer().endsWith('nats-server'));
});

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { MetaloopError } from '../errors.js';
import { parseMetricsPort, startObservabilityServer, type ObservabilityServer } from './server.js';

const servers: ObservabilityServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function start(opts: Parameters<typeof startObservabilityServer>[0]): Promise<ObservabilityServer> {
  const s = await startObservabilityServer({ host: '127.0.0.1', ...opts });
  servers.push(s);
  return s;
}

describe('startObservabilityServer', () => {
  it('binds a free port when asked for 0 and serves prom-client text on /metrics with default process metrics', async () => {
    const registry = new Registry();
    const s = await start({ port: 0, registry });
    assert.ok(s.port > 0 && s.port < 65536);
    assert.equal(s.url, `http://127.0.0.1:${s.port}`);
    const res = await fetch(`${s.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^# TYPE process_cpu_user_seconds_total counter$/m);
    assert.match(body, /^nodejs_eventloop_lag_seconds /m);
  });

  it('answers /healthz with 200 and /readyz with 503 and a reason until ready() says yes', async () => {
    let ready = false;
    const s = await start({ port: 0, registry: new Registry(), ready: () => (ready ? true : { ready: false, reason: 'not connected to NATS' }) });
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    const before = await fetch(`${s.url}/readyz`);
    assert.equal(before.status, 503);
    assert.match(await before.text(), /not connected to NATS/);
    ready = true;
    const now = await fetch(`${s.url}/readyz`);
    assert.equal(now.status, 200);
    assert.equal((await now.text()).trim(), 'ready');
  });

  it('treats an async readiness check that throws or hangs as not ready', async () => {
    const throwing = await start({ port: 0, registry: new Registry(), defaultMetrics: false, ready: () => Promise.reject(new Error('backend not loaded')) });
    const r1 = await fetch(`${throwing.url}/readyz`);
    assert.equal(r1.status, 503);
    assert.match(await r1.text(), /backend not loaded/);
    const hanging = await start({ port: 0, registry: new Registry(), defaultMetrics: false, readyTimeoutMs: 50, ready: () => new Promise<boolean>(() => {}) });
    const r2 = await fetch(`${hanging.url}/readyz`);
    assert.equal(r2.status, 503);
    assert.match(await r2.text(), /timed out/);
    const asyncTrue = await start({ port: 0, registry: new Registry(), defaultMetrics: false, ready: () => Promise.resolve(true) });
    assert.equal((await fetch(`${asyncTrue.url}/readyz`)).status, 200);
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    const s = await start({ port: 0, registry: new Registry(), defaultMetrics: false });
    assert.equal((await fetch(`${s.url}/nope`)).status, 404);
    assert.equal((await fetch(`${s.url}/metrics`, { method: 'POST' })).status, 405);
  });

  it('can share one registry between two servers (default metrics registered once)', async () => {
    const registry = new Registry();
    const a = await start({ port: 0, registry });
    const b = await start({ port: 0, registry });
    assert.notEqual(a.port, b.port);
    assert.equal((await fetch(`${b.url}/metrics`)).status, 200);
  });

  it('close() is idempotent and frees the port', async () => {
    const s = await start({ port: 0, registry: new Registry(), defaultMetrics: false });
    await fetch(`${s.url}/healthz`); // leaves a keep-alive connection open
    await Promise.all([s.close(), s.close()]);
    await s.close();
    await assert.rejects(fetch(`${s.url}/healthz`));
    // The port can be bound again.
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(s.port, '127.0.0.1', () => probe.close(() => resolve()));
    });
  });

  it('rejects a busy port and invalid ports with a MetaloopError', async () => {
    const s = await start({ port: 0, registry: new Registry(), defaultMetrics: false });
    await assert.rejects(startObservabilityServer({ port: s.port, host: '127.0.0.1', defaultMetrics: false }), (e: unknown) => {
      assert.ok(e instanceof MetaloopError);
      assert.match(e.message, new RegExp(`cannot serve metrics on 127.0.0.1:${s.port}`));
      return true;
    });
    await assert.rejects(startObservabilityServer({ port: 70000 }), /0\.\.65535/);
    await assert.rejects(startObservabilityServer({ port: 1.5 }), /0\.\.65535/);
  });
});

describe('parseMetricsPort', () => {
  it('defaults, accepts 0 (free port) and -1 (off), rejects junk', () => {
    assert.equal(parseMetricsPort(undefined, 9400), 9400);
    assert.equal(parseMetricsPort('9500', 9400), 9500);
    assert.equal(parseMetricsPort('0', 9401), 0);
    assert.equal(parseMetricsPort('-1', 9401), null);
    assert.equal(parseMetricsPort(-1, 9401), null);
    assert.throws(() => parseMetricsPort('abc', 9400), /--metrics-port/);
    assert.throws(() => parseMetricsPort('-2', 9400), /--metrics-port/);
    assert.throws(() => parseMetricsPort('65536', 9400), /--metrics-port/);
  });
});

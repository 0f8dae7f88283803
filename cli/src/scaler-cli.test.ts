/**
 * `metaloop coordinator --k8s-scaler` end to end: a real coordinator process on a real nats-server
 * talks to the HTTP stand-in of the Kubernetes API: min when idle, a submitted run's workers.count
 * (right away, not after the 60 s interval: a state change pokes the scaler), back to min when the
 * run is cancelled; bad scaler settings stop the command with a message naming the variable.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { childPids, CLI, FakeKubeApi, METALOOP_COORDINATOR, Proc, type Ran, runMetaloop } from '@metaloop/testing';

const EXAMPLE = fileURLToPath(new URL('../../examples/sinusoid.yaml', import.meta.url));

const children = childPids();

function metaloop(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Ran> {
  return runMetaloop(children, args, env, timeoutMs);
}

async function until(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('metaloop coordinator --k8s-scaler', () => {
  let nats: NatsServer | undefined;
  const apis: FakeKubeApi[] = [];
  after(async () => {
    for (const a of apis) await a.close();
    await nats?.stop();
  });

  it('scales the worker Deployment to min when idle, to the run’s workers.count, and back on cancel', async () => {
    nats = await startNatsServer();
    const api = new FakeKubeApi();
    await api.start();
    apis.push(api);
    api.replicas = 2;
    const env = {
      METALOOP_NATS_URL: nats.url,
      METALOOP_K8S_SCALER: 'true',
      METALOOP_WORKER_DEPLOYMENT: 'workers',
      METALOOP_WORKER_NAMESPACE: 'ml',
      METALOOP_WORKER_MIN_REPLICAS: '1',
      METALOOP_WORKER_MAX_REPLICAS: '4',
    };
    // The server's own bin here; `metaloop coordinator` (the same code through the CLI) below.
    const coord = new Proc('metaloop-coordinator', process.execPath, [METALOOP_COORDINATOR, '--metrics-port', '-1', '--k8s-api', api.url, '--k8s-scaler-interval-ms', '60000'], { ...env, METALOOP_LOG_LEVEL: 'info' });
    children.add(coord.pid);
    const log = () => coord.output().join('\n');
    try {
      await until('the idle scale-down to min', () => api.replicas === 1);
      assert.deepEqual(JSON.parse(api.patches()[0]!.body), { spec: { replicas: 1 } });
      await until('the coordinator', () => log().includes('coordinator running'));

      // No worker exists, so the run stays active; it asks for 3 workers.
      const s = await metaloop(['submit', EXAMPLE, '--set', 'workers.count=3'], env);
      assert.equal(s.code, 0, s.stderr);
      const runId = s.stdout.trim();
      await until('the scale-up to workers.count', () => api.replicas === 3);

      const c = await metaloop(['cancel', runId], env);
      assert.equal(c.code, 0, c.stderr);
      await until('the scale-down after cancel', () => api.replicas === 1);
      assert.deepEqual(
        api.patches().map((r) => [r.headers['content-type'], JSON.parse(r.body) as unknown]),
        [1, 3, 1].map((n) => ['application/merge-patch+json', { spec: { replicas: n } }]),
      );
      assert.match(log(), /worker scaler started/);
      assert.match(log(), /scaled workers/);
    } finally {
      await coord.stop();
      assert.equal(coord.exited?.code, 0, `SIGTERM stops the coordinator with its scaler cleanly; log:\n${log()}`);
      children.delete(coord.pid);
    }
  });

  it('an unreachable API is not fatal; bad scaler settings are, naming the setting', async () => {
    nats ??= await startNatsServer();
    const base = { METALOOP_NATS_URL: nats.url, METALOOP_WORKER_NAMESPACE: 'ml' };
    const missing = await metaloop(['coordinator', '--metrics-port', '-1', '--k8s-scaler', '--k8s-api', 'http://127.0.0.1:1'], base);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /METALOOP_WORKER_DEPLOYMENT/);
    const bad = await metaloop(['coordinator', '--metrics-port', '-1'], { ...base, METALOOP_K8S_SCALER: 'maybe' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /METALOOP_K8S_SCALER must be true or false/);

    // Port 1 on loopback refuses connections: the coordinator keeps serving and logs the errors.
    const coord = new Proc('coordinator', process.execPath, [CLI, 'coordinator', '--metrics-port', '-1', '--k8s-scaler', '--k8s-api', 'http://127.0.0.1:1'], {
      ...base,
      METALOOP_WORKER_DEPLOYMENT: 'workers',
      METALOOP_LOG_LEVEL: 'info',
    });
    children.add(coord.pid);
    const log = () => coord.output().join('\n');
    try {
      await until('two failed scaler cycles', () => (log().match(/worker scaler: cycle failed/g) ?? []).length >= 2);
      assert.match(log(), /unreachable/);
      const l = await metaloop(['list', '--json'], { METALOOP_NATS_URL: nats.url });
      assert.equal(l.code, 0, l.stderr);
    } finally {
      await coord.stop();
      assert.equal(coord.exited?.code, 0, log());
      children.delete(coord.pid);
    }
  });
});

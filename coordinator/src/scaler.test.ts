/**
 * The Kubernetes scaler against a local HTTP stand-in of the API server (no Kubernetes API server
 * can run here): the requests' path, verb, headers and body, when it patches and when not, clamping,
 * idle → min, and the error paths (500, 403, a closed port, no answer) with their growing back-off.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { metaloop, type Logger } from '@metaloop/shared';
import { LifecycleError } from './errors.js';
import { stateToProto, type RunStateName } from './run-state.js';
import { FakeKubeApi, SCALE_PATH, type Recorded } from '@metaloop/testing';
import {
  backoffDelay,
  compileScalerOptions,
  demandFromRecords,
  desiredReplicas,
  KubernetesScaler,
  loadKubeConfig,
  type ScalerCycle,
  type ScalerOptions,
} from './scaler.js';

interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown> | undefined;
}
function recordingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields });
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

/** Starts a scaler and collects its cycles; `waitFor` resolves once `pred(cycles)` holds. */
async function startScaler(api: FakeKubeApi, opts: Partial<ScalerOptions> & Pick<ScalerOptions, 'demand'>) {
  const cycles: ScalerCycle[] = [];
  const waiters: (() => void)[] = [];
  const logs: LogLine[] = [];
  const scaler = await KubernetesScaler.create({
    deployment: 'workers',
    namespace: 'ml',
    apiServer: api.url,
    intervalMs: 60_000,
    backoffBaseMs: 20,
    backoffMaxMs: 80,
    requestTimeoutMs: 2000,
    logger: recordingLogger(logs),
    ...opts,
    onCycle: (c) => {
      cycles.push(c);
      for (const w of waiters.splice(0)) w();
    },
  });
  const running = scaler.run();
  const waitFor = async (pred: (c: ScalerCycle[]) => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pred(cycles)) {
      if (Date.now() > deadline) throw new Error(`timed out; cycles: ${JSON.stringify(cycles)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50).unref();
      });
    }
  };
  return { scaler, running, cycles, logs, waitFor };
}

async function errorCount(scaler: KubernetesScaler, reason: string): Promise<number> {
  const m = await scaler.metrics.errors.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

function record(state: RunStateName, count?: number, specJson?: string): metaloop.IRunRecord {
  return { runId: `r-${state}-${count}`, state: stateToProto(state), specJson: specJson ?? JSON.stringify({ name: 'x', workers: count === undefined ? {} : { count } }) };
}

describe('scaler: pure parts', () => {
  it('demand = sum of workers.count over pending and running runs', () => {
    const records = [record('running', 3), record('pending', 2), record('paused', 5), record('succeeded', 7), record('failed', 4), record('cancelled', 9)];
    assert.equal(demandFromRecords(records), 5);
    assert.equal(demandFromRecords([]), 0);
    // No count in the spec (or an unreadable spec) asks for the schema default, 1.
    assert.equal(demandFromRecords([record('running'), record('running', 1, '{not json')]), 2);
  });

  it('desired replicas are clamped to [min, max] and fall to min when idle', () => {
    assert.equal(desiredReplicas(0, 0, 8), 0);
    assert.equal(desiredReplicas(0, 2, 8), 2);
    assert.equal(desiredReplicas(5, 2, 8), 5);
    assert.equal(desiredReplicas(50, 2, 8), 8);
    assert.equal(desiredReplicas(Number.NaN, 1, 8), 1);
  });

  it('back-off doubles from the base up to the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 1000, 30_000)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    assert.equal(backoffDelay(1000, 1000, 60_000), 60_000);
  });

  it('bad options and a missing cluster are refused with a message naming the setting', () => {
    const demand = () => 0;
    assert.throws(() => compileScalerOptions({ deployment: '', demand }), /worker-deployment|METALOOP_WORKER_DEPLOYMENT/);
    assert.throws(() => compileScalerOptions({ deployment: 'w', minReplicas: 5, maxReplicas: 2, demand }), /minReplicas \(5\) > maxReplicas \(2\)/);
    assert.throws(() => compileScalerOptions({ deployment: 'w', minReplicas: -1, demand }), /minReplicas/);
    assert.throws(() => loadKubeConfig({}, {}), /KUBERNETES_SERVICE_HOST/);
    assert.throws(() => loadKubeConfig({ apiServer: 'not a url' }, {}), /--k8s-api/);
  });
});

describe('scaler against an API server stand-in', () => {
  const servers: FakeKubeApi[] = [];
  const scalers: KubernetesScaler[] = [];
  after(async () => {
    for (const s of scalers) await s.close();
    for (const s of servers) await s.close();
  });
  async function api(): Promise<FakeKubeApi> {
    const s = new FakeKubeApi();
    await s.start();
    servers.push(s);
    return s;
  }

  it('reads the scale (GET) and merge-patches spec.replicas to the demand', async () => {
    const fake = await api();
    const t = await startScaler(fake, { demand: () => 3 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.length >= 1);
    await t.scaler.close();
    assert.deepEqual(
      fake.requests.map((r) => `${r.method} ${r.url}`),
      [`GET ${SCALE_PATH}`, `PATCH ${SCALE_PATH}`],
    );
    const [get, patch] = fake.requests as [Recorded, Recorded];
    assert.equal(get.body, '');
    assert.match(String(get.headers.accept), /application\/json/);
    assert.equal(patch.headers['content-type'], 'application/merge-patch+json');
    assert.deepEqual(JSON.parse(patch.body), { spec: { replicas: 3 } });
    assert.equal(fake.replicas, 3);
    assert.deepEqual(t.cycles[0], { ok: true, demand: 3, desired: 3, current: 1, patched: true, delayMs: 60_000 });
    assert.equal((await t.scaler.metrics.desiredReplicas.get()).values[0]?.value, 3);
    assert.equal((await t.scaler.metrics.patches.get()).values[0]?.value, 1);
    assert.ok(t.logs.some((l) => l.level === 'info' && l.msg === 'scaled workers' && l.fields?.from === 1 && l.fields?.to === 3));
  });

  it('does not patch when the replicas are already right', async () => {
    const fake = await api();
    fake.replicas = 4;
    const t = await startScaler(fake, { demand: () => 4, intervalMs: 30 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.length >= 3);
    await t.scaler.close();
    assert.ok(fake.requests.length >= 3);
    assert.ok(fake.requests.every((r) => r.method === 'GET' && r.url === SCALE_PATH));
    assert.ok(t.cycles.every((c) => c.ok && !c.patched && c.current === 4 && c.delayMs === 30));
  });

  it('clamps to max, falls back to min when idle, and reacts to poke() at once', async () => {
    const fake = await api();
    let demand = 50;
    const t = await startScaler(fake, { demand: () => demand, minReplicas: 1, maxReplicas: 6 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.length >= 1);
    assert.equal(fake.replicas, 6);
    // The runs end: a state change pokes the scaler long before its 60 s interval.
    demand = 0;
    const t0 = Date.now();
    t.scaler.poke();
    await t.waitFor((c) => c.length >= 2);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(fake.replicas, 1);
    assert.deepEqual(fake.patches().map((r) => JSON.parse(r.body) as unknown), [{ spec: { replicas: 6 } }, { spec: { replicas: 1 } }]);
    await t.scaler.close();
  });

  it('idle with min 0: a scale of 0 (spec.replicas omitted) is left alone; a running one goes to 0', async () => {
    const fake = await api();
    fake.replicas = undefined;
    const t = await startScaler(fake, { demand: () => 0, intervalMs: 30 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.length >= 2);
    assert.equal(fake.patches().length, 0);
    assert.ok(t.cycles.every((c) => c.ok && c.current === 0 && c.desired === 0));
    fake.replicas = 2;
    await t.waitFor((c) => c.some((x) => x.patched));
    await t.scaler.close();
    assert.deepEqual(JSON.parse(fake.patches()[0]!.body), { spec: { replicas: 0 } });
    assert.equal(fake.replicas, 0);
  });

  it('500s: counted, logged, back-off doubles up to the cap, resets after a success', async () => {
    const fake = await api();
    fake.fail = [500, 500, 500, 500];
    const t = await startScaler(fake, { demand: () => 2, intervalMs: 40, backoffBaseMs: 20, backoffMaxMs: 80 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.some((x) => x.ok));
    // Fail again after the success: the back-off starts from the base again.
    fake.fail = [500, 500];
    await t.waitFor((c) => c.filter((x) => !x.ok).length >= 6 && c.at(-1)!.ok);
    await t.scaler.close();
    const shape = t.cycles.map((c) => (c.ok ? `ok:${c.delayMs}` : `${c.reason}:${c.delayMs}`));
    assert.deepEqual(shape.slice(0, 5), ['server:20', 'server:40', 'server:80', 'server:80', 'ok:40']);
    const secondRun = shape.slice(5);
    assert.deepEqual(secondRun.slice(secondRun.indexOf('server:20'), secondRun.indexOf('server:20') + 3), ['server:20', 'server:40', 'ok:40']);
    assert.equal(await errorCount(t.scaler, 'server'), 6);
    assert.equal(fake.replicas, 2);
    const warns = t.logs.filter((l) => l.level === 'warn');
    assert.equal(warns.length, 6);
    assert.equal(warns[0]!.fields?.reason, 'server');
    assert.match(String(warns[0]!.fields?.error), /HTTP 500: stand-in says 500/);
    assert.equal(warns[1]!.fields?.retryInMs, 40);
  });

  it('403 (RBAC) on the GET and on the PATCH: counted as forbidden and retried until allowed', async () => {
    const fake = await api();
    fake.fail = [403];
    fake.failPatch = [403];
    const t = await startScaler(fake, { demand: () => 5 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.some((x) => x.ok));
    await t.scaler.close();
    assert.deepEqual(
      t.cycles.map((c) => [c.ok, c.reason, c.delayMs, c.patched]),
      [
        [false, 'forbidden', 20, false],
        [false, 'forbidden', 40, false],
        [true, undefined, 60_000, true],
      ],
    );
    assert.match(t.cycles[1]!.error ?? '', /HTTP 403/);
    assert.deepEqual(
      fake.requests.map((r) => r.method),
      ['GET', 'GET', 'PATCH', 'GET', 'PATCH'],
    );
    assert.equal(await errorCount(t.scaler, 'forbidden'), 2);
    assert.equal(fake.replicas, 5);
  });

  it('a closed port: unreachable is counted, back-off grows and caps, run() never rejects; close() is idempotent', async () => {
    const probe = await api();
    const url = probe.url;
    servers.splice(servers.indexOf(probe), 1);
    await probe.close();
    const fake = { url } as FakeKubeApi;
    const t = await startScaler(fake, { demand: () => 3, backoffBaseMs: 10, backoffMaxMs: 40 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.length >= 5);
    const delays = t.cycles.slice(0, 5).map((c) => c.delayMs);
    assert.deepEqual(delays, [10, 20, 40, 40, 40]);
    assert.ok(t.cycles.every((c) => !c.ok && c.reason === 'unreachable' && /ECONNREFUSED|connect/i.test(c.error ?? '')));
    assert.ok((await errorCount(t.scaler, 'unreachable')) >= 5);
    assert.equal((await t.scaler.metrics.desiredReplicas.get()).values[0]?.value, 3);
    await t.scaler.close();
    await t.scaler.close();
    await t.running; // resolved, not rejected
    await assert.rejects(t.scaler.run(), LifecycleError);
  });

  it('an API server that never answers times out as unreachable; a failing demand is counted too', async () => {
    const fake = await api();
    fake.hang = true;
    const t = await startScaler(fake, { demand: () => 1, requestTimeoutMs: 100, backoffBaseMs: 10 });
    scalers.push(t.scaler);
    await t.waitFor((c) => c.length >= 2);
    await t.scaler.close();
    assert.ok(t.cycles.every((c) => !c.ok && c.reason === 'unreachable' && /no answer within 100 ms/.test(c.error ?? '')));

    const fake2 = await api();
    const t2 = await startScaler(fake2, {
      demand: () => {
        throw new Error('NATS down');
      },
      backoffBaseMs: 10,
    });
    scalers.push(t2.scaler);
    await t2.waitFor((c) => c.length >= 2);
    await t2.scaler.close();
    assert.deepEqual(t2.cycles.slice(0, 2).map((c) => [c.reason, c.error, c.delayMs]), [['demand', 'NATS down', 10], ['demand', 'NATS down', 20]]);
    assert.equal(fake2.requests.length, 0);
    assert.equal(await errorCount(t2.scaler, 'demand'), 2);
  });
});

/**
 * The coordinator's Kubernetes scaler through a real API server (issue 28, item 3): the chart is
 * installed on kube-apiserver v1.34 (RBAC on; @metaloop/testing/kube), and a real coordinator
 * process runs outside the cluster with the chart's ServiceAccount token (`kubectl create token`),
 * the scaler settings of the chart's coordinator Deployment and a real nats-server. It scales the
 * worker Deployment to what the active runs ask for (min when idle, the sum of workers.count,
 * clamped to max) and the Deployment controller, scheduler and kwok act on it. The same token is
 * refused everything else by the real authoriser: reading the Deployment itself (hence plain
 * `kubectl scale`), secrets, pods, other Deployments, other namespaces. A ServiceAccount without the
 * chart's RoleBinding gets 403, counted as `forbidden` by the scaler.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { childPids, freePort, METALOOP_COORDINATOR, Proc, runMetaloop, SINUSOID, type Ran } from '@metaloop/testing';
import { metricValue, scrape } from '@metaloop/testing/cluster';
import { KUBE_NODES, useKubeCluster } from '@metaloop/testing/kube';
import { installHelm, makeTestChart, type TestChart } from './harness.js';
import { eventsOf, helmOn, ok, pods, until, type List, type Obj } from './kube-chart.js';

const NS = 'ml';
const RELEASE = 'metaloop';
const WORKER = 'metaloop-worker';
const COORDINATOR = 'metaloop-coordinator';
const SERVICE_ACCOUNT = 'metaloop';
const MAX = 4;
const WORKERS = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=worker`;
const GPU_NODES = Object.keys(KUBE_NODES).filter((n) => KUBE_NODES[n]!.gpus > 0);

const cluster = useKubeCluster();
const children = childPids();
let helmBin = '';
let chart: TestChart;
let nats: NatsServer | undefined;
/** The chart's ServiceAccount's token (`kubectl create token`) and a kubeconfig with it. */
let saToken = '';
let saKubeconfig = '';
const SA_USER = `system:serviceaccount:${NS}:${SERVICE_ACCOUNT}`;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Deployment extends Obj {
  spec: { replicas?: number; template: { spec: { serviceAccountName?: string; containers: { name: string; env?: EnvVar[] }[] } } };
}

before(async () => {
  helmBin = await installHelm();
  chart = await makeTestChart();
  const c = await cluster.ready();
  ok(
    await helmOn(helmBin, c, ['install', RELEASE, chart.dir, '-n', NS, '--create-namespace', '--set', 'externalNats.url=nats://nats.invalid:4222', '--set', `coordinator.scaler.maxReplicas=${MAX}`, '--wait', '--timeout', '3m']),
    'helm install',
  );
  saToken = ok(await c.kubectl(['create', 'token', SERVICE_ACCOUNT, '-n', NS, '--duration=1h']), 'kubectl create token').trim();
  saKubeconfig = await c.tokenKubeconfig('scaler', saToken, NS);
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
  await chart?.cleanup();
});

/** kubectl as the chart's ServiceAccount. */
const asScaler = (args: string[]) => cluster().kubectl(args, { kubeconfig: saKubeconfig });
const replicas = async () => (await cluster().json<Deployment>(['get', 'deployment', WORKER, '-n', NS])).spec.replicas ?? 0;
const runningWorkers = async () => (await pods(cluster(), NS, WORKERS)).filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp);

function forbidden(r: Ran, what: string): string {
  assert.notEqual(r.code, 0, `${what} must be refused`);
  assert.match(r.stderr, /Forbidden|forbidden/, `${what}: refused by the authoriser, not for another reason:\n${r.stderr}`);
  return r.stderr.trim().split('\n').pop() ?? '';
}

describe('the Kubernetes worker scaler on a real API server', () => {
  it('a coordinator with the chart’s ServiceAccount token scales the workers to the runs’ demand, through the scale subresource alone', async (t) => {
    const c = cluster();
    // The scaler settings exactly as the chart's coordinator pod gets them.
    const coord = await c.json<Deployment>(['get', 'deployment', COORDINATOR, '-n', NS]);
    assert.equal(coord.spec.template.spec.serviceAccountName, SERVICE_ACCOUNT);
    const env: Record<string, string> = {};
    for (const e of coord.spec.template.spec.containers[0]?.env ?? []) {
      if (!e.name.startsWith('METALOOP_K8S') && !e.name.startsWith('METALOOP_WORKER_')) continue;
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = NS;
    }
    t.diagnostic(`scaler env from the chart's Deployment: ${JSON.stringify(env)}`);
    assert.deepEqual(env, { METALOOP_K8S_SCALER: 'true', METALOOP_WORKER_DEPLOYMENT: WORKER, METALOOP_WORKER_NAMESPACE: NS, METALOOP_WORKER_MIN_REPLICAS: '0', METALOOP_WORKER_MAX_REPLICAS: String(MAX) });
    assert.equal(await replicas(), 1, 'a new worker Deployment starts at 1 (the chart leaves replicas to the scaler)');

    const metricsPort = await freePort();
    const natsEnv = { METALOOP_NATS_URL: nats!.url };
    // A long interval: every change below comes from a run state change poking the scaler.
    const proc = new Proc('metaloop-coordinator', process.execPath, [METALOOP_COORDINATOR, '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1', '--kubeconfig', saKubeconfig, '--k8s-scaler-interval-ms', '600000'], {
      ...env,
      ...natsEnv,
      METALOOP_LOG_LEVEL: 'info',
    });
    children.add(proc.child.pid!);
    const log = () => proc.output().join('\n');
    const steps: string[] = [];
    const expectReplicas = async (n: number, why: string) => {
      await until(`replicas ${n} (${why})`, 30_000, async () => (await replicas()) === n, async () => `replicas ${await replicas()}; coordinator log:\n${log()}`);
      await until(`${n} running workers (${why})`, 60_000, async () => (await runningWorkers()).length === n);
      const ws = await runningWorkers();
      for (const w of ws) assert.ok(GPU_NODES.includes(w.spec.nodeName ?? ''), `worker on a GPU node: ${w.spec.nodeName}`);
      steps.push(`${why} -> ${n} (${ws.map((w) => w.spec.nodeName).join(',') || 'no pods'})`);
    };
    const submit = async (count: number) => {
      const r = await runMetaloop(children, ['submit', SINUSOID, '--set', `workers.count=${count}`], natsEnv, 60_000);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const cancel = async (id: string) => assert.equal((await runMetaloop(children, ['cancel', id], natsEnv, 60_000)).code, 0);
    try {
      await expectReplicas(0, 'idle: min');
      // No worker process exists, so the runs stay active and keep asking.
      const a = await submit(3);
      await expectReplicas(3, 'run A asks for 3');
      const b = await submit(2);
      await expectReplicas(MAX, `A+B ask for 5, clamped to max ${MAX}`);
      await cancel(a);
      await expectReplicas(2, 'A cancelled: B asks for 2');
      await cancel(b);
      await expectReplicas(0, 'B cancelled: idle');
      t.diagnostic(`scaled: ${steps.join(' | ')}`);
      const metrics = await scrape(metricsPort);
      assert.equal(metricValue(metrics, 'metaloop_scaler_patches_total'), 5, 'five PATCHes of the scale');
      assert.equal(metricValue(metrics, 'metaloop_scaler_errors_total'), 0, `no scaler error; log:\n${log()}`);
      const events = (await eventsOf(c, NS, 'Deployment', WORKER)).filter((e) => e.reason === 'ScalingReplicaSet').map((e) => e.message);
      t.diagnostic(`Deployment events: ${events.join(' | ')}`);
      for (const m of [/from 1 to 0/, /from 0 to 3/, /from 3 to 4/, /from 4 to 2/, /from 2 to 0/]) assert.ok(events.some((e) => m.test(e)), `an event ${m}: ${events.join(' | ')}`);
    } finally {
      await proc.stop();
      children.delete(proc.child.pid!);
    }
    assert.equal(proc.exited?.code, 0, `the coordinator stops cleanly; log:\n${log()}`);
    assert.doesNotMatch(log(), /cycle failed/);
    // Every request the token made, from the API server's audit log: the scale subresource only.
    const calls = await c.audit(SA_USER);
    const kinds = new Map<string, number>();
    for (const e of calls) {
      const o = e.objectRef ?? {};
      const k = `${e.verb} ${o.apiGroup ?? ''}/${o.resource ?? ''}${o.subresource ? `/${o.subresource}` : ''} ${o.namespace ?? ''}/${o.name ?? ''} -> ${e.responseStatus?.code}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    t.diagnostic(`audit log, requests as ${SA_USER}: ${[...kinds].map(([k, n]) => `${n}× ${k}`).join(' | ')}`);
    assert.deepEqual([...kinds.keys()].sort(), [`get apps/deployments/scale ${NS}/${WORKER} -> 200`, `patch apps/deployments/scale ${NS}/${WORKER} -> 200`]);
    assert.equal(kinds.get(`patch apps/deployments/scale ${NS}/${WORKER} -> 200`), 5);
  });

  it('the same token is refused everything but get/patch of the worker Deployment’s scale', async (t) => {
    const c = cluster();
    ok(await c.kubectl(['patch', 'deployment', WORKER, '-n', NS, '--subresource=scale', '--type=merge', '-p', '{"spec":{"replicas":1}}']), 'admin scales to 1');
    const [pod] = await until('a worker pod', 60_000, async () => {
      const ws = await runningWorkers();
      return ws.length === 1 ? ws : undefined;
    });
    ok(await c.kubectl(['create', 'namespace', 'other']), 'create namespace other');
    ok(await c.kubectl(['create', 'deployment', WORKER, '-n', 'other', '--image=registry.invalid/none', '--replicas=1']), 'a same-named Deployment in another namespace');

    // Allowed: exactly what the scaler does.
    const scale = JSON.parse(ok(await asScaler(['get', 'deployment', WORKER, '--subresource=scale', '-o', 'json']), 'GET scale as the scaler')) as { kind: string; spec: { replicas: number } };
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.spec.replicas, 1);
    ok(await asScaler(['patch', 'deployment', WORKER, '--subresource=scale', '--type=merge', '-p', '{"spec":{"replicas":2}}']), 'PATCH scale as the scaler');
    assert.equal(await replicas(), 2);

    // Raw requests with the token (no kubectl logic in between), each refused by the authoriser.
    const raw = async (what: string, method: string, path: string, body?: unknown, type?: string) => {
      const r = await c.request(saToken, method, path, body, type);
      assert.equal(r.status, 403, `${what}: ${method} ${path} must be forbidden, got ${r.status}: ${r.body.slice(0, 300)}`);
      return (JSON.parse(r.body) as { message: string }).message;
    };
    const apps = `/apis/apps/v1/namespaces/${NS}/deployments`;
    const merge = 'application/merge-patch+json';
    const refusals: Record<string, string> = {
      'GET the worker Deployment': await raw('get deployment', 'GET', `${apps}/${WORKER}`),
      'PATCH the worker Deployment itself': await raw('patch deployment', 'PATCH', `${apps}/${WORKER}`, { spec: { replicas: 3 } }, merge),
      'PATCH the coordinator Deployment': await raw('patch coordinator', 'PATCH', `${apps}/${COORDINATOR}`, { spec: { replicas: 0 } }, merge),
      'PATCH the coordinator’s scale': await raw('scale coordinator', 'PATCH', `${apps}/${COORDINATOR}/scale`, { spec: { replicas: 0 } }, merge),
      'PATCH a same-named Deployment’s scale in another namespace': await raw('other namespace', 'PATCH', `/apis/apps/v1/namespaces/other/deployments/${WORKER}/scale`, { spec: { replicas: 0 } }, merge),
      'list secrets': await raw('list secrets', 'GET', `/api/v1/namespaces/${NS}/secrets`),
      'get the NATS auth Secret': await raw('get secret', 'GET', `/api/v1/namespaces/${NS}/secrets/metaloop-nats-auth`),
      'list pods': await raw('list pods', 'GET', `/api/v1/namespaces/${NS}/pods`),
      'delete a worker pod': await raw('delete pod', 'DELETE', `/api/v1/namespaces/${NS}/pods/${pod!.metadata.name}`),
      'create a pod': await raw('create pod', 'POST', `/api/v1/namespaces/${NS}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'registry.invalid/none' }] } }),
      'add a verb to its own Role': await raw('patch role', 'PATCH', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles/${COORDINATOR}-scaler`, [{ op: 'add', path: '/rules/0/verbs/-', value: 'delete' }], 'application/json-patch+json'),
      // kubectl scale reads the Deployment before it touches the scale: refused at that GET.
      'kubectl scale': forbidden(await asScaler(['scale', 'deployment', WORKER, '--replicas=3']), 'kubectl scale'),
    };
    assert.match(refusals['PATCH the worker Deployment itself']!, /cannot patch resource "deployments"/);
    assert.match(refusals['delete a worker pod']!, /cannot delete resource "pods"/);
    assert.match(refusals['kubectl scale']!, /cannot get resource "deployments"/);
    for (const [what, msg] of Object.entries(refusals)) t.diagnostic(`refused: ${what}: ${msg}`);
    assert.equal(await replicas(), 2, 'nothing the refused calls tried happened');
    assert.equal((await c.json<List>(['get', 'pods', '-n', NS, '-l', WORKERS])).items.length >= 1, true);
    const canI = ok(await asScaler(['auth', 'can-i', '--list', '-n', NS]), 'auth can-i --list');
    t.diagnostic(`kubectl auth can-i --list as the scaler:\n${canI}`);
    assert.match(canI, /deployments\.apps\/scale\s+\[\]\s+\[metaloop-worker\]\s+\[get patch\]/);
  });

  it('without the chart’s RoleBinding the scaler is refused (403, counted as forbidden) and the coordinator keeps serving', async () => {
    const c = cluster();
    ok(await c.kubectl(['create', 'serviceaccount', 'nobody', '-n', NS]), 'create serviceaccount');
    const token = ok(await c.kubectl(['create', 'token', 'nobody', '-n', NS, '--duration=1h']), 'create token').trim();
    const kubeconfig = await c.tokenKubeconfig('nobody', token, NS);
    const metricsPort = await freePort();
    const proc = new Proc('metaloop-coordinator', process.execPath, [METALOOP_COORDINATOR, '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1', '--kubeconfig', kubeconfig, '--k8s-scaler', '--worker-deployment', WORKER, '--worker-namespace', NS, '--worker-min-replicas', '3'], {
      METALOOP_NATS_URL: nats!.url,
      METALOOP_LOG_LEVEL: 'info',
    });
    children.add(proc.child.pid!);
    const log = () => proc.output().join('\n');
    try {
      await until('a refused scaler cycle', 30_000, async () => Promise.resolve(/cycle failed/.test(log()) || undefined), async () => Promise.resolve(log()));
      assert.match(log(), /forbidden/);
      assert.match(log(), /system:serviceaccount:ml:nobody/);
      assert.ok(metricValue(await scrape(metricsPort), 'metaloop_scaler_errors_total', { reason: 'forbidden' }) >= 1, 'counted as forbidden');
      const l = await runMetaloop(children, ['list', '--json'], { METALOOP_NATS_URL: nats!.url }, 60_000);
      assert.equal(l.code, 0, `the coordinator still serves its API: ${l.stderr}`);
      assert.equal(await replicas(), 2, 'the refused scaler changed nothing');
    } finally {
      await proc.stop();
      children.delete(proc.child.pid!);
    }
  });
});

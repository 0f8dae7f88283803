/**
 * The chart on a real Kubernetes API server (issue 28): kube-apiserver v1.34 with RBAC, the
 * controller-manager, the scheduler, and kwok's fake GPU and CPU nodes (scripts/kube-up.sh through
 * @metaloop/testing/kube; one control plane for this file). No container runs: kwok marks pods
 * Running once the scheduler has placed them, so this shows what the API server, the controllers
 * and the scheduler do with our objects, not what the images do.
 *
 * 1. the default values with the official NATS chart, and each examples/*.yaml: every rendered
 *    object passes the server's strict validation (dry run); `helm install --wait` succeeds, the server holds each object of
 *    the release, workers run on GPU nodes only, coordinator and NATS on CPU nodes (GPU taint);
 * 2. `helm upgrade` of a worker-only value rolls the workers and nothing else, keeps the generated
 *    NATS passwords, and leaves the replicas the scaler set; `helm rollback` undoes it;
 * 3. `helm uninstall` leaves only what the chart documents it keeps (the auth Secret, the
 *    JetStream PVC);
 * 4. examples/gpu-cluster.yaml with the prometheus-operator CRDs: ServiceMonitor and
 *    PrometheusRule accepted against the CRD schemas, workers only on the A100/H100 nodes, one
 *    beyond their GPUs Pending with the scheduler saying why.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { KUBE_NODES, useKubeCluster } from '@metaloop/testing/kube';
import { CHART_DIR, installHelm } from './harness.js';
import { byPhase, chartWithNats, eventsOf, everythingIn, GPU_VALUES, helmOn, installPrometheusOperatorCrds, ok, pods, until, type List, type Obj, type Pod } from './kube-chart.js';

const NS = 'metaloop';
const RELEASE = 'metaloop';
const GPU_NS = 'gpu';
const GPU_RELEASE = 'metaloop';
const WORKERS = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=worker`;
const COORDINATOR = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=coordinator`;
const GPU_NODES = Object.keys(KUBE_NODES).filter((n) => KUBE_NODES[n]!.gpus > 0);
const CPU_NODES = Object.keys(KUBE_NODES).filter((n) => KUBE_NODES[n]!.gpus === 0);

const cluster = useKubeCluster();
let helmBin = '';
let chart: Awaited<ReturnType<typeof chartWithNats>>;

before(async () => {
  helmBin = await installHelm();
  chart = await chartWithNats();
  await installPrometheusOperatorCrds(await cluster.ready());
});
after(async () => chart?.cleanup());

interface Deployment extends Obj {
  spec: { replicas?: number; template: { metadata: { annotations?: Record<string, string> }; spec: { containers: { name: string; resources?: { requests?: Record<string, string> } }[] } } };
  status: { observedGeneration?: number; updatedReplicas?: number; readyReplicas?: number; replicas?: number };
}
interface ReplicaSet extends Obj {
  spec: { replicas?: number };
}

const deployment = (ns: string, name: string) => cluster().json<Deployment>(['get', 'deployment', name, '-n', ns]);
const replicaSets = async (ns: string, selector: string) =>
  (await cluster().json<List<ReplicaSet>>(['get', 'replicasets', '-n', ns, '-l', selector])).items.map((r) => ({ name: r.metadata.name, replicas: r.spec.replicas ?? 0, revision: r.metadata.annotations?.['deployment.kubernetes.io/revision'] }));
const nodeOf = (p: Pod) => p.spec.nodeName ?? '';
/** Pods not being deleted, Running (kwok) and placed on a node. */
const running = (list: Pod[]) => list.filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp);

/** The release's objects (helm get manifest) as Kind/name, and each read back from the server. */
async function releaseObjects(ns: string, release: string): Promise<string[]> {
  const manifest = ok(await helmOn(helmBin, cluster(), ['get', 'manifest', release, '-n', ns]), 'helm get manifest');
  const out: string[] = [];
  for (const doc of parseAllDocuments(manifest)) {
    const o = doc.toJS() as Obj | null;
    if (!o?.kind) continue;
    const got = await cluster().kubectl(['get', `${o.kind}.${o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''}`.replace(/\.$/, ''), o.metadata.name, '-n', o.metadata.namespace ?? ns, '-o', 'name']);
    assert.equal(got.code, 0, `${o.kind}/${o.metadata.name} of release ${release} is not on the server: ${got.stderr}`);
    out.push(`${o.kind}/${o.metadata.name}`);
  }
  return out.sort();
}

describe('the chart on a real API server (kube-apiserver v1.34 + kwok nodes)', () => {
  it('default values + NATS chart: strict server-side validation, helm install --wait, pods where the chart puts them', async (t) => {
    const c = cluster();
    t.diagnostic(`control plane up in ${c.startSeconds.toFixed(1)} s (${c.server}); NATS chart ${chart.natsVersion}`);
    ok(await c.kubectl(['create', 'namespace', NS]), 'create namespace');
    // Every rendered object through the API server's own validation, unknown fields refused.
    const rendered = ok(await helmOn(helmBin, c, ['template', RELEASE, chart.dir, '-n', NS]), 'helm template');
    const dry = await c.kubectl(['create', '--dry-run=server', '--validate=strict', '-n', NS, '-f', '-'], { input: rendered });
    assert.equal(dry.code, 0, `the API server refused rendered objects:\n${dry.stderr}`);
    const accepted = dry.stdout.trim().split('\n');
    t.diagnostic(`server dry run accepted ${accepted.length} objects: ${accepted.map((l) => l.replace(/ created \(server dry run\)$/, '')).join(', ')}`);
    // The same for each example values file (NetworkPolicies, monitors, rules, external NATS, ...).
    const variants: [string, string[]][] = (await readdir(path.join(CHART_DIR, 'examples')))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => [`examples/${f}`, ['-f', path.join(CHART_DIR, 'examples', f)]]);
    variants.push(['every monitor + NetworkPolicies', ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.podMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true', '--set', 'networkPolicy.enabled=true']]);
    for (const [name, args] of variants) {
      const text = ok(await helmOn(helmBin, c, ['template', RELEASE, chart.dir, '-n', NS, ...args]), `helm template (${name})`);
      const r = await c.kubectl(['create', '--dry-run=server', '--validate=strict', '-n', NS, '-f', '-'], { input: text });
      assert.equal(r.code, 0, `the API server refused objects of ${name}:\n${r.stderr}`);
      const kinds = [...new Set(r.stdout.trim().split('\n').map((l) => l.split('/')[0]))];
      t.diagnostic(`${name}: ${r.stdout.trim().split('\n').length} objects accepted (${kinds.join(', ')})`);
    }

    ok(await helmOn(helmBin, c, ['install', RELEASE, chart.dir, '-n', NS, '--wait', '--timeout', '3m']), 'helm install --wait');
    const objects = await releaseObjects(NS, RELEASE);
    t.diagnostic(`release objects on the server: ${objects.join(', ')}`);
    for (const kind of ['Deployment/metaloop-coordinator', 'Deployment/metaloop-worker', 'StatefulSet/metaloop-nats', 'Role/metaloop-coordinator-scaler', 'RoleBinding/metaloop-coordinator-scaler', 'ServiceAccount/metaloop', 'Secret/metaloop-nats-auth']) {
      assert.ok(objects.includes(kind), `the release has ${kind}: ${objects.join(', ')}`);
    }

    // Scheduling: the workers' nvidia.com/gpu limit exists only on GPU nodes; the others do not
    // tolerate the GPU taint, so they land on CPU nodes.
    const workers = running(await pods(c, NS, WORKERS));
    assert.equal(workers.length, 1, 'the worker Deployment (replicas left to the scaler: 1 at creation) runs one pod');
    for (const w of workers) assert.ok(GPU_NODES.includes(nodeOf(w)), `worker ${w.metadata.name} on GPU node, got ${nodeOf(w)}`);
    const rest = running(await pods(c, NS, `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component!=worker`));
    const names = rest.map((p) => `${p.metadata.name}@${nodeOf(p)}`);
    t.diagnostic(`pods: ${[...workers, ...rest].map((p) => `${p.metadata.name}@${nodeOf(p)}`).join(', ')}`);
    assert.ok(rest.some((p) => p.metadata.labels?.['app.kubernetes.io/component'] === 'coordinator'), `a coordinator pod runs: ${names.join(', ')}`);
    assert.ok(rest.some((p) => p.metadata.labels?.['app.kubernetes.io/name'] === 'nats' && p.metadata.labels?.['app.kubernetes.io/component'] !== 'nats-box'), `a NATS server pod runs: ${names.join(', ')}`);
    for (const p of rest) assert.ok(CPU_NODES.includes(nodeOf(p)), `${p.metadata.name} must not take a GPU node: on ${nodeOf(p)}`);
    // The JetStream claim is bound (to one of kube-up's volumes).
    const pvcs = (await c.json<List<Obj & { status: { phase: string } }>>(['get', 'pvc', '-n', NS])).items;
    assert.deepEqual(pvcs.map((p) => p.status.phase), ['Bound'], `one bound JetStream PVC: ${JSON.stringify(pvcs.map((p) => [p.metadata.name, p.status.phase]))}`);
  });

  it('helm upgrade of a worker value rolls the workers only, keeps passwords and the scaler’s replicas; helm rollback restores', async (t) => {
    const c = cluster();
    const secretBefore = await c.json<{ data: Record<string, string> }>(['get', 'secret', 'metaloop-nats-auth', '-n', NS]);
    const coordBefore = await deployment(NS, 'metaloop-coordinator');
    const natsBefore = await c.json<{ status: { updateRevision: string } }>(['get', 'statefulset', 'metaloop-nats', '-n', NS]);
    const coordPodsBefore = running(await pods(c, NS, COORDINATOR)).map((p) => p.metadata.uid);
    // What the coordinator's scaler does: the scale subresource, nothing else.
    ok(await c.kubectl(['patch', 'deployment', 'metaloop-worker', '-n', NS, '--subresource=scale', '--type=merge', '-p', '{"spec":{"replicas":2}}']), 'scale to 2');
    await until('2 running workers', 60_000, async () => running(await pods(c, NS, WORKERS)).length === 2);
    const rsBefore = await replicaSets(NS, WORKERS);

    ok(await helmOn(helmBin, c, ['upgrade', RELEASE, chart.dir, '-n', NS, '--set', 'worker.resources.requests.cpu=3', '--wait', '--timeout', '3m']), 'helm upgrade');
    const w = await deployment(NS, 'metaloop-worker');
    assert.equal(w.spec.replicas, 2, 'helm upgrade keeps the replicas the scaler set (the chart leaves replicas out)');
    assert.equal(w.spec.template.spec.containers[0]?.resources?.requests?.['cpu'], '3');
    const rsAfter = await replicaSets(NS, WORKERS);
    t.diagnostic(`worker ReplicaSets before ${JSON.stringify(rsBefore)}, after upgrade ${JSON.stringify(rsAfter)}`);
    const current = rsAfter.filter((r) => r.replicas > 0);
    assert.equal(current.length, 1, 'one live worker ReplicaSet after the rollout');
    assert.ok(!rsBefore.some((r) => r.name === current[0]!.name), 'the workers rolled to a new ReplicaSet');
    await until('the rolled workers running', 60_000, async () => {
      const ws = running(await pods(c, NS, WORKERS));
      return ws.length === 2 && ws.every((p) => p.metadata.labels?.['pod-template-hash'] === current[0]!.name.split('-').pop());
    });
    for (const p of running(await pods(c, NS, WORKERS))) assert.ok(GPU_NODES.includes(nodeOf(p)), `rolled worker on a GPU node: ${nodeOf(p)}`);

    const coordAfter = await deployment(NS, 'metaloop-coordinator');
    assert.equal(coordAfter.metadata.generation, coordBefore.metadata.generation, 'the coordinator Deployment is untouched by a worker-only change');
    assert.deepEqual(running(await pods(c, NS, COORDINATOR)).map((p) => p.metadata.uid), coordPodsBefore, 'the coordinator pod was not replaced');
    assert.equal((await c.json<{ status: { updateRevision: string } }>(['get', 'statefulset', 'metaloop-nats', '-n', NS])).status.updateRevision, natsBefore.status.updateRevision, 'NATS not rolled');
    const secretAfter = await c.json<{ data: Record<string, string> }>(['get', 'secret', 'metaloop-nats-auth', '-n', NS]);
    assert.deepEqual(secretAfter.data, secretBefore.data, 'the generated NATS passwords survive the upgrade (the chart looks them up)');
    assert.equal(coordAfter.spec.template.metadata.annotations?.['checksum/auth'], coordBefore.spec.template.metadata.annotations?.['checksum/auth']);

    ok(await helmOn(helmBin, c, ['rollback', RELEASE, '1', '-n', NS, '--wait', '--timeout', '3m']), 'helm rollback');
    const back = await deployment(NS, 'metaloop-worker');
    assert.equal(back.spec.template.spec.containers[0]?.resources?.requests?.['cpu'], '2', 'rollback restores revision 1’s worker template');
    assert.equal(back.spec.replicas, 2, 'and still leaves the replicas to the scaler');
    const rsBack = await replicaSets(NS, WORKERS);
    const live = rsBack.filter((r) => r.replicas > 0);
    assert.equal(live.length, 1);
    assert.ok(rsBefore.some((r) => r.name === live[0]!.name), `the rollback re-used revision 1's ReplicaSet: ${JSON.stringify(rsBack)}`);
    const history = ok(await helmOn(helmBin, c, ['history', RELEASE, '-n', NS, '-o', 'json']), 'helm history');
    const revs = (JSON.parse(history) as { revision: number; status: string; description: string }[]).map((h) => `${h.revision}:${h.status}:${h.description}`);
    t.diagnostic(`helm history: ${revs.join(' | ')}`);
    assert.equal(revs.length, 3);
    assert.match(revs[2]!, /^3:deployed:Rollback to 1/);
    const scaled = (await eventsOf(c, NS, 'Deployment', 'metaloop-worker')).filter((e) => e.reason === 'ScalingReplicaSet').map((e) => e.message);
    t.diagnostic(`worker Deployment events: ${scaled.join(' | ')}`);
    assert.ok(scaled.length >= 3, 'the Deployment controller scaled ReplicaSets for the scale-up, the upgrade and the rollback');
  });

  it('helm uninstall leaves only the auth Secret (resource-policy keep) and the JetStream PVC', async (t) => {
    const c = cluster();
    const before = await everythingIn(c, NS);
    ok(await helmOn(helmBin, c, ['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']), 'helm uninstall');
    const left = await until('the release’s pods to go', 60_000, async () => {
      const all = await everythingIn(c, NS);
      return all.some((o) => o.startsWith('Pod/')) ? undefined : all;
    });
    t.diagnostic(`namespace ${NS} before uninstall: ${before.length} objects; after: ${left.join(', ')}`);
    // What every namespace has (the controller-manager's), plus what the chart documents it keeps.
    const kept = left.filter((o) => o !== 'ServiceAccount/default' && o !== 'ConfigMap/kube-root-ca.crt');
    assert.deepEqual(kept, ['PersistentVolumeClaim/metaloop-nats-js-metaloop-nats-0', 'Secret/metaloop-nats-auth']);
    // deploy/README.md's clean-up command finds the claim by the release label.
    const byLabel = ok(await c.kubectl(['get', 'pvc', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name']), 'get pvc -l');
    assert.equal(byLabel.trim(), 'persistentvolumeclaim/metaloop-nats-js-metaloop-nats-0');
    const helmSecrets = (await c.json<List>(['get', 'secrets', '-n', NS, '-l', 'owner=helm'])).items;
    assert.equal(helmSecrets.length, 0, 'no release record left');
  });

  it('examples/gpu-cluster.yaml: monitors and rules accepted by the CRDs, workers only on A100/H100 nodes, the one beyond their GPUs Pending', async (t) => {
    const c = cluster();
    ok(await helmOn(helmBin, c, ['install', GPU_RELEASE, chart.dir, '-n', GPU_NS, '--create-namespace', '-f', GPU_VALUES, '--wait', '--timeout', '3m']), 'helm install -f gpu-cluster.yaml');
    const objects = await releaseObjects(GPU_NS, GPU_RELEASE);
    t.diagnostic(`gpu-cluster release objects: ${objects.join(', ')}`);
    for (const o of ['ServiceMonitor/metaloop', 'PrometheusRule/metaloop', 'ConfigMap/metaloop-dashboard']) assert.ok(objects.some((x) => x.startsWith(o)), `${o} on the server: ${objects.join(', ')}`);
    // The CRD schema is enforced: a ServiceMonitor with a wrong field type is refused.
    const bad = await c.kubectl(['create', '-n', GPU_NS, '-f', '-', '--validate=strict'], {
      input: JSON.stringify({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'bad' }, spec: { selector: {}, endpoints: [{ port: 'metrics', interval: 30 }] } }),
    });
    assert.notEqual(bad.code, 0, 'the ServiceMonitor CRD refuses interval: 30 (a number)');
    assert.match(bad.stderr, /interval/);

    // Allowed GPUs: A100 (2) + H100 (2). Five workers: four run there, one waits.
    const allowed = Object.keys(KUBE_NODES).filter((n) => /A100|H100/.test(KUBE_NODES[n]!.product ?? ''));
    const gpus = allowed.reduce((s, n) => s + KUBE_NODES[n]!.gpus, 0);
    ok(await c.kubectl(['patch', 'deployment', 'metaloop-worker', '-n', GPU_NS, '--subresource=scale', '--type=merge', '-p', JSON.stringify({ spec: { replicas: gpus + 1 } })]), 'scale');
    const sel = `app.kubernetes.io/instance=${GPU_RELEASE},app.kubernetes.io/component=worker`;
    const state = await until(
      `${gpus} running workers and one Pending`,
      90_000,
      async () => {
        const ps = await pods(c, GPU_NS, sel);
        const ph = byPhase(ps);
        return ph['Running']?.length === gpus && ph['Pending']?.length === 1 ? ps : undefined;
      },
      async () => JSON.stringify(byPhase(await pods(c, GPU_NS, sel))),
    );
    const placed = state.filter((p) => p.status.phase === 'Running').map(nodeOf);
    t.diagnostic(`workers on ${placed.join(', ')}`);
    for (const n of placed) assert.ok(allowed.includes(n), `worker on ${n}: only ${allowed.join('/')} match gpu-cluster.yaml's selector and affinity`);
    for (const n of allowed) assert.equal(placed.filter((p) => p === n).length, KUBE_NODES[n]!.gpus, `${n} runs one worker per GPU`);
    const pending = state.find((p) => p.status.phase === 'Pending')!;
    const why = await until('the scheduler’s FailedScheduling event', 30_000, async () => (await eventsOf(c, GPU_NS, 'Pod', pending.metadata.name)).find((e) => e.reason === 'FailedScheduling')?.message);
    t.diagnostic(`pending worker: ${why}`);
    assert.match(why, /Insufficient nvidia\.com\/gpu/);
    assert.match(why, /didn't match Pod's node affinity\/selector/, 'the T4 and CPU nodes are excluded by the selector/affinity');
    const coordinator = running(await pods(c, GPU_NS, `app.kubernetes.io/instance=${GPU_RELEASE},app.kubernetes.io/component=coordinator`));
    assert.equal(coordinator.length, 1);
    assert.ok(CPU_NODES.includes(nodeOf(coordinator[0]!)), `coordinator on a CPU node: ${nodeOf(coordinator[0]!)}`);
    ok(await helmOn(helmBin, c, ['uninstall', GPU_RELEASE, '-n', GPU_NS, '--wait', '--timeout', '3m']), 'helm uninstall');
    assert.deepEqual((await c.json<List>(['get', 'servicemonitors,prometheusrules,deployments', '-n', GPU_NS])).items, [], 'uninstall removes the monitors and rules too');
  });
});

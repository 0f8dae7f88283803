/**
 * The Helm chart, checked with a real helm v3.22.0 (built by scripts/install-helm.sh): lint and
 * template with the default values, each example values file and every optional feature turned on;
 * every rendered object validated against the Kubernetes / prometheus-operator schemas; bad values
 * rejected by values.schema.json with a message naming the key.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  CHART_DIR,
  REPO_ROOT,
  helm,
  installHelm,
  makeTestChart,
  parseManifests,
  parsePermissionsConf,
  validateObject,
  writeValues,
  type K8sObject,
  type TestChart,
} from './harness.js';

const RELEASE = 'ml';
const NAMESPACE = 'metaloop-test';
/** Without the NATS subchart: an external NATS URL (chart-nats.test.ts renders the default values with the subchart). */
const EXTERNAL_NATS = ['--set', 'nats.enabled=false', '--set', 'externalNats.url=nats://nats.messaging:4222'];

const ALL_FEATURES = {
  nats: { enabled: false },
  externalNats: { url: 'tls://nats-0.nats.messaging:4222,tls://nats-1.nats.messaging:4222' },
  commonLabels: { team: 'research' },
  commonAnnotations: { 'metaloop.dev/owner': 'research' },
  imagePullSecrets: [{ name: 'regcred' }],
  auth: { mode: 'userPassword', existingSecret: 'my-nats-credentials' },
  tls: { enabled: true, existingSecret: 'my-nats-tls' },
  coordinator: { scaler: { enabled: true, minReplicas: 1, maxReplicas: 4 }, nodeSelector: { pool: 'system' } },
  worker: {
    gpu: { enabled: true, count: 2, resourceName: 'nvidia.com/gpu' },
    nodeSelector: { 'nvidia.com/gpu.present': 'true' },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-H100-80GB-HBM3'] }] }],
        },
      },
    },
    runtimeClassName: 'nvidia',
    priorityClassName: 'gpu-batch',
    cudaCache: { enabled: true, sizeLimit: '2Gi', hostPath: '' },
    terminationGracePeriodSeconds: 900,
    drain: { enabled: true, timeoutSeconds: 800 },
  },
  metrics: {
    serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' }, scrapeTimeout: '10s' },
    podMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
    dashboard: { enabled: true, annotations: { grafana_folder: 'Metaloop' } },
  },
  networkPolicy: {
    enabled: true,
    metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
    natsTo: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'messaging' } } }],
  },
};

let helmBin = '';
let chart: TestChart;
let scratch = '';

function find(objs: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const hits = find(objs, kind, name);
  assert.equal(hits.length, 1, `expected one ${kind}${name ? `/${name}` : ''}, got ${hits.length}`);
  return hits[0] as K8sObject;
}

// Narrow accessors for the parts of rendered objects the assertions read.
interface Container {
  name: string;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  resources?: { limits?: Record<string, string> };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
interface PodSpec {
  containers: Container[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
  terminationGracePeriodSeconds?: number;
  runtimeClassName?: string;
  volumes?: Array<{ name: string }>;
}
function podSpec(o: K8sObject): PodSpec {
  return (o['spec'] as { template: { spec: PodSpec } }).template.spec;
}
function container(o: K8sObject): Container {
  const c = podSpec(o).containers[0];
  assert.ok(c, `${o.kind}/${o.metadata.name} has no container`);
  return c;
}
function envOf(c: Container, name: string) {
  return c.env?.find((e) => e.name === name);
}

interface Relabeling {
  sourceLabels?: string[];
  separator?: string;
  targetLabel?: string;
  regex?: string;
  replacement?: string;
  action?: string;
}
interface MonitorEndpoint {
  relabelings?: Relabeling[];
}

/** Prometheus's `replace` relabeling (the only action the chart's monitors use), in order. */
function relabel(labels: Record<string, string>, steps: Relabeling[]): Record<string, string> {
  const out = { ...labels };
  for (const r of steps) {
    assert.equal(r.action ?? 'replace', 'replace', `this test applies replace relabelings only: ${JSON.stringify(r)}`);
    const value = (r.sourceLabels ?? []).map((l) => out[l] ?? '').join(r.separator ?? ';');
    const m = new RegExp(`^(?:${r.regex ?? '(.*)'})$`).exec(value);
    if (!m || !r.targetLabel) continue;
    out[r.targetLabel] = (r.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_, i: string) => m[Number(i)] ?? '');
  }
  return out;
}

/** lint + template one set of values; every object validated; returns the objects. */
async function renderAndValidate(valueArgs: string[]): Promise<K8sObject[]> {
  const lint = await helm(helmBin, ['lint', chart.dir, '--strict', ...valueArgs]);
  assert.equal(lint.code, 0, `helm lint failed:\n${lint.stdout}\n${lint.stderr}`);
  const tpl = await helm(helmBin, ['template', RELEASE, chart.dir, '--namespace', NAMESPACE, ...valueArgs]);
  assert.equal(tpl.code, 0, `helm template failed:\n${tpl.stderr}`);
  const objs = parseManifests(tpl.stdout);
  assert.ok(objs.length > 0, 'nothing rendered');
  for (const o of objs) await validateObject(o);
  return objs;
}

before(async () => {
  helmBin = await installHelm();
  chart = await makeTestChart();
  scratch = await mkdtemp(path.join(tmpdir(), 'metaloop-values-'));
});

after(async () => {
  await chart?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('helm chart helm/metaloop', () => {
  it('is checked with helm v3.22.0', async (t) => {
    const v = await helm(helmBin, ['version', '--template', '{{.Version}}']);
    assert.equal(v.stdout.trim(), 'v3.22.0');
    if (chart.fixtures.length > 0) {
      t.diagnostic(`chart files/ lacks ${chart.fixtures.join(', ')}: rendered with fixtures until deploy/ has the originals`);
    }
  });

  it('validates against the schemas for real (a broken object and an unknown kind are refused)', async () => {
    const meta = { name: 'x' };
    await assert.rejects(
      validateObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta, spec: { replicas: 'two', selector: {}, template: {} } }),
      /Deployment\/x .*replicas/,
    );
    await assert.rejects(validateObject({ apiVersion: 'apps/v1', kind: 'Deploymint', metadata: meta }), /Deploymint/);
    await assert.rejects(
      validateObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: meta, spec: { endpoints: [{ interval: 5 }] } }),
      /ServiceMonitor\/x/,
    );
  });

  it("keeps files/ equal to deploy/'s rule file and dashboard", async (t) => {
    const pairs = [
      ['deploy/prometheus/metaloop-rules.yaml', 'helm/metaloop/files/metaloop-rules.yaml'],
      ['deploy/grafana/metaloop.json', 'helm/metaloop/files/metaloop.json'],
    ] as const;
    for (const [original, copy] of pairs) {
      const o = path.join(REPO_ROOT, original);
      const present = await access(o).then(() => true, () => false);
      if (!present) {
        t.diagnostic(`${original} does not exist yet: nothing to compare`);
        continue;
      }
      const want = await readFile(o, 'utf8');
      const got = await readFile(path.join(REPO_ROOT, copy), 'utf8').catch(() => null);
      assert.ok(got !== null, `${copy} is missing: run scripts/check-deploy.sh --sync-chart-files`);
      assert.ok(got === want, `${copy} differs from ${original}: run scripts/check-deploy.sh --sync-chart-files`);
    }
  });

  it('gives the NATS subchart the same users and permissions as deploy/nats/permissions.conf', async () => {
    const conf = parsePermissionsConf(await readFile(path.join(REPO_ROOT, 'deploy', 'nats', 'permissions.conf'), 'utf8'));
    const values = parseYaml(await readFile(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as {
      nats: { config: { merge: { authorization: { users: Array<{ user: string; password: string; permissions: { publish: { allow: string[] }; subscribe: { allow: string[] }; allow_responses?: boolean } }> } } } };
    };
    const users = values.nats.config.merge.authorization.users;
    assert.deepEqual(users.map((u) => u.user), ['coordinator', 'worker', 'cli']);
    for (const u of users) {
      const want = conf[u.user as 'coordinator' | 'worker' | 'cli'];
      assert.deepEqual(u.permissions.publish.allow, want.publish, `${u.user} publish`);
      assert.deepEqual(u.permissions.subscribe.allow, want.subscribe, `${u.user} subscribe`);
      assert.equal(u.permissions.allow_responses === true, want.allowResponses, `${u.user} allow_responses`);
      assert.match(u.password, /^<< \$METALOOP_NATS_[A-Z]+_PASSWORD >>$/);
    }
    assert.ok(conf.worker.publish.includes('$JS.API.CONSUMER.MSG.NEXT.METALOOP_WORK.metaloop-workers'));
    assert.deepEqual(conf.cli.publish, ['metaloop.api.>']);
  });

  it('renders the default values (external NATS) into valid objects', async () => {
    const objs = await renderAndValidate(EXTERNAL_NATS);
    const coordinator = one(objs, 'Deployment', `${RELEASE}-metaloop-coordinator`);
    const worker = one(objs, 'Deployment', `${RELEASE}-metaloop-worker`);
    one(objs, 'Service', `${RELEASE}-metaloop-coordinator`);
    one(objs, 'ServiceAccount');
    one(objs, 'Secret', `${RELEASE}-metaloop-nats-auth`);
    one(objs, 'ConfigMap', `${RELEASE}-metaloop-dashboard`);
    assert.equal(find(objs, 'NetworkPolicy').length, 0, 'NetworkPolicy is opt-in');
    assert.equal(find(objs, 'ServiceMonitor').length, 0, 'ServiceMonitor is opt-in');

    // Scaler wiring of the coordinator.
    const cc = container(coordinator);
    assert.equal(envOf(cc, 'METALOOP_K8S_SCALER')?.value, 'true');
    assert.equal(envOf(cc, 'METALOOP_WORKER_DEPLOYMENT')?.value, worker.metadata.name);
    assert.equal(envOf(cc, 'METALOOP_NATS_URL')?.value, 'nats://nats.messaging:4222');
    assert.equal(envOf(cc, 'METALOOP_NATS_USER')?.value, 'coordinator');
    assert.equal(envOf(cc, 'METALOOP_NATS_PASSWORD')?.valueFrom?.secretKeyRef?.name, `${RELEASE}-metaloop-nats-auth`);
    assert.equal(envOf(cc, 'METALOOP_WORKER_MIN_REPLICAS')?.value, '0');
    assert.equal(envOf(cc, 'METALOOP_WORKER_MAX_REPLICAS')?.value, '8');
    // Scaled workers: replicas left to the scaler.
    assert.equal((worker['spec'] as Record<string, unknown>)['replicas'], undefined);

    // RBAC: get/patch on the worker Deployment's scale, nothing else.
    const role = one(objs, 'Role');
    assert.deepEqual(role['rules'], [
      { apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: [worker.metadata.name], verbs: ['get', 'patch'] },
    ]);
    const binding = one(objs, 'RoleBinding');
    assert.deepEqual((binding['subjects'] as unknown[])[0], {
      kind: 'ServiceAccount',
      name: `${RELEASE}-metaloop`,
      namespace: NAMESPACE,
    });

    // Worker: one GPU, TF growth, drain hook, grace period, CUDA cache volume, non-root.
    const wc = container(worker);
    assert.equal(wc.resources?.limits?.['nvidia.com/gpu'], '1');
    assert.equal(envOf(wc, 'TF_FORCE_GPU_ALLOW_GROWTH')?.value, 'true');
    assert.equal(envOf(wc, 'CUDA_CACHE_MAXSIZE')?.value, '4294967296');
    assert.match(wc.lifecycle?.preStop?.exec?.command.join(' ') ?? '', /\/drain/);
    assert.equal(podSpec(worker).terminationGracePeriodSeconds, 600);
    assert.ok(podSpec(worker).volumes?.some((v) => v.name === 'cuda-cache'));
    const psc = (worker['spec'] as { template: { spec: { securityContext: { runAsNonRoot: boolean } } } }).template.spec.securityContext;
    assert.equal(psc.runAsNonRoot, true);

    const dash = one(objs, 'ConfigMap', `${RELEASE}-metaloop-dashboard`);
    assert.equal(dash.metadata.labels?.['grafana_dashboard'], '1');
    JSON.parse((dash['data'] as Record<string, string>)['metaloop.json'] ?? '');
  });

  it('renders every example values file into valid objects', async () => {
    const dir = path.join(CHART_DIR, 'examples');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
    assert.ok(files.includes('gpu-cluster.yaml') && files.includes('external-nats.yaml'), `examples: ${files.join(', ')}`);
    for (const f of files) {
      const objs = await renderAndValidate(['-f', path.join(chart.dir, 'examples', f), ...EXTERNAL_NATS]);
      one(objs, 'Deployment', `${RELEASE}-metaloop-worker`);
      if (f === 'gpu-cluster.yaml') {
        one(objs, 'ServiceMonitor');
        assert.equal(one(objs, 'PrometheusRule').metadata.labels?.['release'], 'kube-prometheus-stack');
      }
      if (f === 'external-nats.yaml') {
        assert.equal(find(objs, 'Secret').length, 0, 'existingSecret: no Secret rendered');
        assert.equal(find(objs, 'NetworkPolicy').length, 2);
      }
    }
  });

  it('renders every optional feature into valid objects', async () => {
    const values = await writeValues(scratch, 'all.yaml', ALL_FEATURES);
    const objs = await renderAndValidate(['-f', values]);

    for (const kind of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule']) {
      const o = one(objs, kind);
      assert.equal(o.metadata.labels?.['release'], 'kube-prometheus-stack', `${kind} carries the release: label`);
      assert.equal(o.metadata.labels?.['team'], 'research', `${kind} carries commonLabels`);
    }
    const rule = one(objs, 'PrometheusRule');
    const groups = (rule['spec'] as { groups: Array<{ rules: unknown[] }> }).groups;
    assert.ok(groups.length > 0 && groups.every((g) => g.rules.length > 0), 'PrometheusRule embeds the rule groups');

    const policies = find(objs, 'NetworkPolicy');
    assert.deepEqual(policies.map((p) => p.metadata.name).sort(), [`${RELEASE}-metaloop-coordinator`, `${RELEASE}-metaloop-worker`]);

    // existingSecret: no Secret of ours, env points at the user's.
    assert.equal(find(objs, 'Secret').length, 0);
    const worker = one(objs, 'Deployment', `${RELEASE}-metaloop-worker`);
    const wc = container(worker);
    assert.equal(envOf(wc, 'METALOOP_NATS_PASSWORD')?.valueFrom?.secretKeyRef?.name, 'my-nats-credentials');
    assert.equal(envOf(wc, 'METALOOP_NATS_TLS_CA')?.value, '/etc/metaloop/nats-tls/ca.crt');

    // GPU scheduling.
    assert.equal(wc.resources?.limits?.['nvidia.com/gpu'], '2');
    const spec = podSpec(worker);
    assert.deepEqual(spec.nodeSelector, { 'nvidia.com/gpu.present': 'true' });
    assert.deepEqual(spec.tolerations, ALL_FEATURES.worker.tolerations);
    assert.deepEqual(spec.affinity, ALL_FEATURES.worker.affinity);
    assert.equal(spec.runtimeClassName, 'nvidia');
    assert.equal(spec.terminationGracePeriodSeconds, 900);
    assert.equal(envOf(wc, 'CUDA_CACHE_MAXSIZE')?.value, String(2 * 1024 ** 3));
  });

  it('mounts the datasets into the workers read-only: an existing ReadOnlyMany PVC, or a hostPath; METALOOP_DATA_DIR points there', async () => {
    const dataVolume = (objs: K8sObject[]) => {
      const worker = one(objs, 'Deployment', `${RELEASE}-metaloop-worker`);
      const spec = podSpec(worker) as { volumes?: Array<{ name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean }; hostPath?: { path: string; type?: string } }> };
      const wc = container(worker) as { volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }> };
      return { volume: spec.volumes?.find((v) => v.name === 'datasets'), mount: wc.volumeMounts?.find((m) => m.name === 'datasets'), dir: envOf(container(worker), 'METALOOP_DATA_DIR')?.value };
    };
    const none = dataVolume(await renderAndValidate(EXTERNAL_NATS));
    assert.deepEqual(none, { volume: undefined, mount: undefined, dir: undefined }, 'no dataset volume by default');
    const pvc = dataVolume(await renderAndValidate([...EXTERNAL_NATS, '--set', 'worker.datasets.enabled=true', '--set', 'worker.datasets.existingClaim=fewshot-data', '--set', 'worker.datasets.subPath=packed']));
    assert.deepEqual(pvc.volume?.persistentVolumeClaim, { claimName: 'fewshot-data', readOnly: true });
    assert.deepEqual(pvc.mount, { name: 'datasets', mountPath: '/data', readOnly: true, subPath: 'packed' });
    assert.equal(pvc.dir, '/data');
    const host = dataVolume(await renderAndValidate([...EXTERNAL_NATS, '--set', 'worker.datasets.enabled=true', '--set', 'worker.datasets.hostPath=/mnt/datasets', '--set', 'worker.datasets.mountPath=/datasets']));
    assert.deepEqual(host.volume?.hostPath, { path: '/mnt/datasets', type: 'Directory' });
    assert.deepEqual(host.mount, { name: 'datasets', mountPath: '/datasets', readOnly: true });
    assert.equal(host.dir, '/datasets');
    for (const [args, message] of [
      [['--set', 'worker.datasets.enabled=true'], /worker\.datasets\.enabled needs worker\.datasets\.existingClaim .* or worker\.datasets\.hostPath/],
      [['--set', 'worker.datasets.enabled=true', '--set', 'worker.datasets.existingClaim=a', '--set', 'worker.datasets.hostPath=/b'], /not both/],
      [['--set', 'worker.datasets.hostPath=relative/dir'], /datasets\/hostPath/],
    ] as const) {
      const r = await helm(helmBin, ['template', RELEASE, chart.dir, ...EXTERNAL_NATS, ...args]);
      assert.notEqual(r.code, 0, `accepted ${args.join(' ')}`);
      assert.match(r.stderr, message);
    }
  });

  it('the ServiceMonitor and PodMonitor name each target job metaloop-<component>, which MetaloopTargetDown selects', async () => {
    const values = await writeValues(scratch, 'monitors.yaml', ALL_FEATURES);
    const objs = await renderAndValidate(['-f', values]);
    // The alert's job matcher, from the chart's own rule file (Prometheus regexes are fully anchored).
    const rules = parseYaml(await readFile(path.join(CHART_DIR, 'files', 'metaloop-rules.yaml'), 'utf8')) as { groups: { rules: { alert?: string; expr: string }[] }[] };
    const expr = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'MetaloopTargetDown')?.expr ?? '';
    const matcher = /up\{job=~"([^"]*)"\}/.exec(expr)?.[1];
    assert.ok(matcher !== undefined, `MetaloopTargetDown selects up by job: ${expr}`);
    const alertSees = new RegExp(`^(?:${matcher})$`);
    for (const kind of ['ServiceMonitor', 'PodMonitor']) {
      const mon = one(objs, kind);
      const spec = mon['spec'] as { jobLabel?: string; endpoints?: MonitorEndpoint[]; podMetricsEndpoints?: MonitorEndpoint[] };
      const endpoint = (spec.endpoints ?? spec.podMetricsEndpoints ?? [])[0];
      assert.ok(endpoint, `${kind} has an endpoint`);
      for (const component of ['coordinator', 'worker']) {
        const deployment = one(objs, 'Deployment', `${RELEASE}-metaloop-${component}`);
        const podLabels = (deployment['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
        // What the operator sets before the monitor's relabelings: job from `jobLabel` (a label of the
        // Service / pod), else the Service's name (ServiceMonitor) or <namespace>/<name> (PodMonitor).
        const discovered: Record<string, string> = { __meta_kubernetes_pod_name: `${component}-0` };
        for (const [k, v] of Object.entries(podLabels)) discovered[`__meta_kubernetes_pod_label_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`] = v;
        discovered['job'] = spec.jobLabel !== undefined ? (podLabels[spec.jobLabel] ?? '') : kind === 'ServiceMonitor' ? `${RELEASE}-metaloop-${component}` : `${NAMESPACE}/${mon.metadata.name}`;
        const job: string | undefined = relabel(discovered, endpoint.relabelings ?? [])['job'];
        assert.equal(job, `metaloop-${component}`, `${kind}: the ${component}'s job (as deploy/prometheus/prometheus.yml names it)`);
        assert.ok(alertSees.test(job ?? ''), `${kind}: MetaloopTargetDown (${expr}) must select job ${job}`);
      }
    }
  });

  it('checksum/auth is the same on every rendering (generated passwords are not in it) and follows given passwords', async () => {
    // A first install renders the Secret with fresh random passwords each time (no Secret to look
    // up yet); a checksum of that rendering rolled every pod on the first `helm upgrade`.
    const checksums = async (args: string[]) =>
      (await renderAndValidate([...EXTERNAL_NATS, ...args]))
        .filter((o) => o.kind === 'Deployment')
        .map((d) => (d['spec'] as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata.annotations?.['checksum/auth']);
    const a = await checksums([]);
    const b = await checksums([]);
    assert.equal(a.length, 2);
    assert.ok(a.every((c) => c !== undefined && c === a[0]), `coordinator and worker carry one checksum: ${a.join(', ')}`);
    assert.deepEqual(b, a, 'two renderings, two sets of random passwords, one checksum');
    const given = await checksums(['--set', 'auth.passwords.worker=s3cret-worker']);
    assert.notEqual(given[0], a[0], 'a password given in the values changes the checksum (the pods roll)');
  });

  it('renders the token and creds auth modes into valid objects', async () => {
    const token = await renderAndValidate([...EXTERNAL_NATS, '--set', 'auth.mode=token']);
    const secret = one(token, 'Secret');
    assert.deepEqual(Object.keys(secret['data'] as object), ['token']);
    const tc = container(one(token, 'Deployment', `${RELEASE}-metaloop-worker`));
    assert.equal(envOf(tc, 'METALOOP_NATS_TOKEN')?.valueFrom?.secretKeyRef?.key, 'token');
    assert.equal(envOf(tc, 'METALOOP_NATS_USER'), undefined);

    const creds = await renderAndValidate([...EXTERNAL_NATS, '--set', 'auth.mode=creds', '--set', 'auth.existingSecret=nats-creds']);
    assert.equal(find(creds, 'Secret').length, 0);
    const cc = container(one(creds, 'Deployment', `${RELEASE}-metaloop-coordinator`));
    assert.equal(envOf(cc, 'METALOOP_NATS_CREDS')?.value, '/etc/metaloop/nats-creds/coordinator.creds');
    const wc = container(one(creds, 'Deployment', `${RELEASE}-metaloop-worker`));
    assert.equal(envOf(wc, 'METALOOP_NATS_CREDS')?.value, '/etc/metaloop/nats-creds/worker.creds');
  });

  it('rejects bad values with a message naming the key', async () => {
    const cases: Array<{ args: string[]; key: RegExp }> = [
      { args: ['--set-string', 'worker.replicas=two'], key: /worker\/replicas/ },
      { args: ['--set', 'worker.replicaz=2'], key: /replicaz/ },
      { args: ['--set', 'coordinator.replicas=2'], key: /coordinator\/replicas/ },
      { args: ['--set', 'auth.mode=kerberos'], key: /auth\/mode/ },
      { args: ['--set', 'metrics.serviceMonitor.interval=often'], key: /serviceMonitor\/interval/ },
      { args: ['--set', 'worker.gpu.count=0'], key: /gpu\/count/ },
      { args: ['--set', 'image.pullPolicy=Sometimes'], key: /pullPolicy/ },
      { args: ['--set', 'externalNats.url=http://nats:4222'], key: /externalNats\/url/ },
      { args: ['--set', 'unknownTopLevel=1'], key: /unknownTopLevel/ },
    ];
    for (const c of cases) {
      const r = await helm(helmBin, ['template', RELEASE, chart.dir, ...EXTERNAL_NATS, ...c.args]);
      assert.notEqual(r.code, 0, `accepted ${c.args.join(' ')}`);
      assert.match(r.stderr, c.key, `message for ${c.args.join(' ')} should name the key:\n${r.stderr}`);
    }
  });

  it('rejects inconsistent values with a message naming the keys', async () => {
    const cases: Array<{ args: string[]; key: RegExp }> = [
      { args: ['--set', 'worker.drain.timeoutSeconds=700'], key: /worker\.drain\.timeoutSeconds.*worker\.terminationGracePeriodSeconds/ },
      { args: ['--set', 'coordinator.scaler.minReplicas=9'], key: /coordinator\.scaler\.minReplicas/ },
      { args: ['--set', 'auth.mode=creds'], key: /auth\.existingSecret/ },
      { args: ['--set', 'tls.enabled=true'], key: /tls\.existingSecret/ },
      { args: ['--set', 'nats.enabled=false'], key: /externalNats\.url/ },
    ];
    for (const c of cases) {
      const base = c.key.source.includes('externalNats') ? [] : EXTERNAL_NATS;
      const r = await helm(helmBin, ['template', RELEASE, chart.dir, ...base, ...c.args]);
      assert.notEqual(r.code, 0, `accepted ${c.args.join(' ')}`);
      assert.match(r.stderr, c.key, `message for ${c.args.join(' ')}:\n${r.stderr}`);
    }
  });
});

/**
 * MetaloopTargetDown fires on a Helm install (issue 28, item 4). The chart's ServiceMonitor and
 * PodMonitor are rendered; a real Prometheus scrapes one target per component through the scrape
 * job prometheus-operator would generate from each (operator-scrape.ts: the operator's own
 * relabelings, then the monitor's), with the labels Kubernetes service discovery gives a pod-backed
 * target, so Prometheus itself applies the relabeling. Nothing listens on the targets' port: `up` is
 * 0 with exactly the labels a Helm install's targets get. Then the rule file's own promtool case for
 * MetaloopTargetDown (deploy/prometheus/metaloop-rules.test.yaml, "a metaloop scrape target down
 * for 5 minutes") runs again with its series and expected alerts carrying those labels, against
 * the rules of the rendered PrometheusRule: it must pass. The same pipeline with the monitors as
 * they were before (jobLabel: app.kubernetes.io/component, no job relabeling) must fail it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { freePort, httpStatus, Proc, requireExecutable, waitFor } from '@metaloop/testing';
import { helm, installHelm, makeTestChart, parseManifests, REPO_ROOT, type K8sObject, type TestChart } from './harness.js';
import { discoveredLabels, operatorJobName, operatorRelabelConfigs, type MonitorSpec } from './operator-scrape.js';

const PROMETHEUS = requireExecutable(process.env['PROMETHEUS'] ?? '/usr/bin/prometheus', 'prometheus', 'apt-get install -y prometheus (or set PROMETHEUS)');
const PROMTOOL = requireExecutable(process.env['PROMTOOL'] ?? '/usr/bin/promtool', 'promtool', 'apt-get install -y prometheus (or set PROMTOOL)');
const RULE_TESTS = path.join(REPO_ROOT, 'deploy', 'prometheus', 'metaloop-rules.test.yaml');
// A release name other than the chart's: its Services are `prod-metaloop-<component>`, so the job
// the operator derives from a Service name is not already metaloop-<component> by chance.
const RELEASE = 'prod';
const FULLNAME = `${RELEASE}-metaloop`;
const NAMESPACE = 'metaloop';
const COMPONENTS = ['coordinator', 'worker'] as const;

type Labels = Record<string, string>;
interface RuleTestCase {
  name?: string;
  interval?: string;
  input_series: { series: string; values: string }[];
  alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: { exp_labels?: Labels; exp_annotations?: Labels }[] | null }[];
}

let helmBin = '';
let chart: TestChart;
let scratch = '';
let objs: K8sObject[] = [];
const procs: Proc[] = [];

before(async () => {
  helmBin = await installHelm();
  chart = await makeTestChart();
  scratch = await mkdtemp(path.join(tmpdir(), 'metaloop-monitor-jobs-'));
  const r = await helm(helmBin, [
    'template', RELEASE, chart.dir, '-n', NAMESPACE,
    '--set', 'nats.enabled=false', '--set', 'externalNats.url=nats://nats:4222',
    '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.podMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true',
  ]);
  assert.equal(r.code, 0, r.stderr);
  objs = parseManifests(r.stdout);
});
after(async () => {
  for (const p of procs) await p.stop();
  await chart?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const one = (kind: string, name?: string) => {
  const hits = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(hits.length, 1, `one ${kind} ${name ?? ''}: ${hits.map((h) => h.metadata.name).join(', ')}`);
  return hits[0]!;
};

/** The monitor as the chart had it before the fix: job from jobLabel (the bare component), no job relabeling. */
function asBefore(m: K8sObject): K8sObject {
  const spec = structuredClone(m['spec']) as MonitorSpec;
  for (const ep of spec.endpoints ?? spec.podMetricsEndpoints ?? []) ep.relabelings = (ep.relabelings ?? []).filter((r) => r['targetLabel'] !== 'job');
  spec.jobLabel = 'app.kubernetes.io/component';
  return { ...m, metadata: { ...m.metadata, name: `${m.metadata.name}-before-fix` }, spec };
}

/** One scrape job per monitor, one target per component (pod-backed, nothing listening at `addresses[i]`). */
function scrapeConfig(monitors: K8sObject[], addresses: string[]): unknown {
  return {
    global: { scrape_interval: '1s', scrape_timeout: '500ms', evaluation_interval: '1s' },
    scrape_configs: monitors.map((m, i) => ({
      job_name: operatorJobName(m),
      metrics_path: '/metrics',
      static_configs: COMPONENTS.map((component) => {
        const d = one('Deployment', `${FULLNAME}-${component}`);
        const tpl = (d['spec'] as { template: { metadata: { labels: Labels }; spec: { containers: { name: string; ports?: { name: string }[] }[] } } }).template;
        const c = tpl.spec.containers[0]!;
        const svc = one('Service', `${FULLNAME}-${component}`);
        const labels = discoveredLabels({
          namespace: NAMESPACE,
          address: addresses[i]!,
          pod: { name: `${FULLNAME}-${component}-0`, labels: tpl.metadata.labels, container: c.name, portName: c.ports?.[0]?.name ?? '', phase: 'Running' },
          service: m.kind === 'ServiceMonitor' ? { name: svc.metadata.name, labels: svc.metadata.labels ?? {}, portName: (svc['spec'] as { ports: { name: string }[] }).ports[0]!.name } : undefined,
        });
        const { __address__: target, ...rest } = labels;
        return { targets: [target], labels: rest };
      }),
      relabel_configs: operatorRelabelConfigs(m),
    })),
  };
}

/** `up` series by `<Kind>/<monitor name>|<component>`, once Prometheus has scraped every target. */
async function upSeries(monitors: K8sObject[]): Promise<Map<string, Labels>> {
  const port = await freePort();
  // One closed port per monitor (nothing listens: every scrape fails, up == 0); the instance label tells the monitor.
  const addresses: string[] = [];
  for (const _ of monitors) addresses.push(`127.0.0.1:${await freePort()}`);
  const config = path.join(scratch, 'prometheus.yml');
  await writeFile(config, stringifyYaml(scrapeConfig(monitors, addresses)));
  const prom = new Proc('prometheus', PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(scratch, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`]);
  procs.push(prom);
  const base = `http://127.0.0.1:${port}`;
  const logs = () => prom.output().join('\n');
  await waitFor('prometheus to be ready', 60_000, async () => (await httpStatus(`${base}/-/ready`)) === 200, logs, () => prom.exitReason());
  const want = monitors.length * COMPONENTS.length;
  let result: { metric: Labels; value: [number, string] }[] = [];
  await waitFor(`${want} up series`, 30_000, async () => {
    const r = (await (await fetch(`${base}/api/v1/query?query=up`)).json()) as { data?: { result: typeof result } };
    result = r.data?.result ?? [];
    return result.length === want;
  }, logs, () => prom.exitReason());
  const out = new Map<string, Labels>();
  for (const s of result) {
    const { __name__: _name, ...labels } = s.metric;
    assert.equal(s.value[1], '0', `nothing listens on the target: ${JSON.stringify(labels)}`);
    const monitor = monitors[addresses.indexOf(labels['instance'] ?? '')];
    const component = COMPONENTS.find((c) => labels['pod'] === `${FULLNAME}-${c}-0`);
    assert.ok(monitor && component, `a series Prometheus made from no target of ours: ${JSON.stringify(labels)}`);
    out.set(`${monitor.kind}/${monitor.metadata.name}|${component}`, labels);
  }
  return out;
}

const parseSeries = (s: string): Labels => Object.fromEntries([...s.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
const seriesText = (name: string, l: Labels) => `${name}{${Object.entries(l).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;

/**
 * The rule file's MetaloopTargetDown case with each series' labels replaced by the labels that the
 * target of the same component got (`byComponent`); a second series of a component gets another
 * pod and instance. Expected alerts and annotations follow the same substitution.
 */
function caseOnLabels(base: RuleTestCase, byComponent: Record<string, Labels>): RuleTestCase {
  const mapped = new Map<string, Labels>();
  const seen: Record<string, number> = {};
  const key = (l: Labels) => `${l['job']}|${l['instance']}`;
  for (const s of base.input_series) {
    const old = parseSeries(s.series);
    const component = (old['job'] ?? '').replace(/^metaloop-/, '');
    const target = byComponent[component];
    assert.ok(target, `the rule test's series ${s.series} names a component (${component}) the chart has no target for`);
    const n = (seen[component] = (seen[component] ?? 0) + 1);
    mapped.set(key(old), n === 1 ? target : { ...target, instance: `${target['instance']}-${n}`, pod: `${target['pod']}-${n}` });
  }
  const sub = (text: string, old: Labels, now: Labels) => text.split(old['instance'] ?? '\0').join(now['instance'] ?? '').split(old['job'] ?? '\0').join(now['job'] ?? '');
  return {
    ...base,
    input_series: base.input_series.map((s) => ({ series: seriesText('up', mapped.get(key(parseSeries(s.series)))!), values: s.values })),
    alert_rule_test: (base.alert_rule_test ?? []).map((a) => ({
      ...a,
      exp_alerts: (a.exp_alerts ?? []).map((e) => {
        const old = e.exp_labels ?? {};
        const now = mapped.get(key(old));
        assert.ok(now, `expected alert ${JSON.stringify(old)} matches a series of the case`);
        const { job: _j, instance: _i, ...rest } = old;
        return { exp_labels: { ...now, ...rest }, exp_annotations: Object.fromEntries(Object.entries(e.exp_annotations ?? {}).map(([k, v]) => [k, sub(v, old, now)])) };
      }),
    })),
  };
}

function promtool(testFile: string): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL, ['test', 'rules', testFile], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool could not run: ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('MetaloopTargetDown on the targets of a Helm install (ServiceMonitor, PodMonitor)', () => {
  it('Prometheus relabels each target to job metaloop-<component>; the rule’s promtool case passes on those labels, and fails with the monitors as they were', async (t) => {
    const monitors = [one('ServiceMonitor'), one('PodMonitor')];
    const before = monitors.map(asBefore);
    const series = await upSeries([...monitors, ...before]);

    const rule = one('PrometheusRule');
    const ruleFile = path.join(scratch, 'rules.yaml');
    await writeFile(ruleFile, stringifyYaml({ groups: (rule['spec'] as { groups: unknown[] }).groups }));
    const tests = parseYaml(await readFile(RULE_TESTS, 'utf8')) as { evaluation_interval?: string; tests: RuleTestCase[] };
    const base = tests.tests.find((c) => (c.alert_rule_test ?? []).some((a) => a.alertname === 'MetaloopTargetDown' && (a.exp_alerts ?? []).length > 0));
    assert.ok(base, `${RULE_TESTS} has a firing case for MetaloopTargetDown`);

    const check = async (m: K8sObject) => {
      const byComponent = Object.fromEntries(COMPONENTS.map((c) => [c, series.get(`${m.kind}/${m.metadata.name}|${c}`)!]));
      for (const c of COMPONENTS) assert.ok(byComponent[c], `Prometheus has the ${c}'s up series of ${m.kind}/${m.metadata.name}: ${[...series.keys()].join(', ')}`);
      const file = path.join(scratch, `${m.metadata.name}-${m.kind}.test.yaml`);
      await writeFile(file, stringifyYaml({ rule_files: [ruleFile], evaluation_interval: tests.evaluation_interval ?? '1m', tests: [caseOnLabels(base, byComponent)] }));
      return { byComponent, run: promtool(file) };
    };
    for (const m of monitors) {
      const { byComponent, run } = await check(m);
      t.diagnostic(`${m.kind}: up{${Object.entries(byComponent['worker']!).map(([k, v]) => `${k}="${v}"`).join(',')}} …`);
      for (const c of COMPONENTS) assert.equal(byComponent[c]!['job'], `metaloop-${c}`, `${m.kind}: the ${c}'s job`);
      assert.equal(run.status, 0, `${m.kind}: the MetaloopTargetDown case must pass on the relabeled targets:\n${run.out}`);
    }
    for (const m of before) {
      const { byComponent, run } = await check(m);
      t.diagnostic(`${m.kind} before the fix: jobs ${COMPONENTS.map((c) => byComponent[c]!['job']).join(', ')}; promtool: ${run.out.split('\n').filter((l) => /FAILED|exp:|got:/.test(l)).map((l) => l.trim()).join(' ').slice(0, 400)}`);
      assert.notEqual(run.status, 0, `${m.kind} with jobLabel=component: the alert must not be able to fire (the bug this test guards)`);
    }
  });
});

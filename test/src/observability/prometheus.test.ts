/**
 * Acceptance test of issue 6: a live local run (real nats-server, a coordinator and 2 worker
 * processes with their metrics endpoints on loopback ports) scraped by a real Prometheus every
 * second. Every PromQL expression of the Grafana dashboard (variables substituted) and of the
 * alert rules is evaluated through Prometheus's HTTP API: dashboard queries must return data
 * (external-exporter panels and classification-only panels must at least be valid queries), the
 * alert expressions must be valid and quiet on a healthy run; `promtool check rules` passes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { freePort } from '@metaloop/testing';
import {
  dashboardQueries,
  httpStatus,
  labelValuesVariables,
  PromClient,
  Proc,
  requireExecutable,
  sampleCount,
  staticVariables,
  substitute,
  waitFor,
  writePrometheusConfig,
  type Dashboard,
} from './harness.js';

const PROMETHEUS = requireExecutable(process.env.PROMETHEUS ?? '/usr/bin/prometheus', 'prometheus', 'apt-get install -y prometheus (or set PROMETHEUS)');
const PROMTOOL = requireExecutable(process.env.PROMTOOL ?? '/usr/bin/promtool', 'promtool', 'apt-get install -y prometheus (or set PROMTOOL)');

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const DASHBOARD = join(repo, 'deploy/grafana/metaloop.json');
const RULES = join(repo, 'deploy/prometheus/metaloop-rules.yaml');
const METALOOP_CLI = join(dirname(fileURLToPath(import.meta.resolve('@metaloop/cli'))), 'cli.js');
const WORKER_CLI = join(dirname(fileURLToPath(import.meta.resolve('@metaloop/worker'))), 'cli.js');

/** Panels fed by exporters this test does not run (NATS exporter, NVIDIA DCGM): valid queries, maybe empty. */
const EXTERNAL = /\b(gnatsd_|nats_varz_|jetstream_|DCGM_)/;
/** Classification-only metrics: a sinusoid (regression) run must leave them empty. */
const CLASSIFICATION_ONLY = /\bmetaloop_eval_accuracy_ratio\b/;
/** Meta-RL-only metrics (returns, not losses): a sinusoid run must leave them empty (test/src/e2e/navigation-2d.test.ts scrapes them). */
const RL_ONLY = /\bmetaloop_(meta_train_return|eval_return|eval_return_gain)\b/;

// A run far longer than the test (the fused MLP path does a few hundred steps/s): it must still be
// running for every rate() over the last seconds; the processes are stopped at the end.
const STEPS = 1_000_000;
const SPEC = `name: observability-acceptance
seed: 7
task: { family: sinusoid, shots: 10, queries: 10 }
model: { kind: mlp, hidden: [40, 40] }
algorithm: { kind: maml, innerSteps: 1, innerLr: 0.01 }
outer: { optimizer: adam, lr: 0.001, metaBatch: 10, steps: ${STEPS}, shardSize: 5 }
eval: { every: 100, tasks: 10, innerSteps: 5 }
checkpoint: { every: 100, keep: 2 }
workers: { count: 2 }
`;

describe('Prometheus scrapes a live run; every dashboard and alert expression evaluates', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metaloop-obs-'));
  const procs: Proc[] = [];
  let nats: NatsServer | undefined;
  let prom: PromClient;
  let runId = '';
  const ports = { coordinator: 0, workers: [0, 0], prometheus: 0 };
  const logs = () => procs.map((p) => p.tail()).join('\n');
  const dead = () => procs.map((p) => p.exitReason()).find((r) => r !== undefined);

  before(async () => {
    nats = await startNatsServer();
    const env = { METALOOP_NATS_URL: nats.url, METALOOP_LOG_LEVEL: 'info' };
    ports.coordinator = await freePort();
    ports.workers = [await freePort(), await freePort()];
    ports.prometheus = await freePort();

    procs.push(
      new Proc('coordinator', process.execPath, [METALOOP_CLI, 'coordinator', '--metrics-port', String(ports.coordinator), '--metrics-host', '127.0.0.1'], env),
    );
    ports.workers.forEach((port, i) => {
      procs.push(
        new Proc(`worker-${i + 1}`, process.execPath, [WORKER_CLI, '--metrics-port', String(port), '--metrics-host', '127.0.0.1'], {
          ...env,
          METALOOP_WORKER_ID: `obs-worker-${i + 1}`,
        }),
      );
    });
    const endpoints = [ports.coordinator, ...ports.workers].map((p) => `http://127.0.0.1:${p}`);
    for (const base of endpoints) {
      await waitFor(`${base}/readyz to answer 200`, 60_000, async () => (await httpStatus(`${base}/readyz`)) === 200, logs, dead);
    }

    // Prometheus first, so the whole run is scraped.
    const config = writePrometheusConfig(
      dir,
      [
        { job: 'metaloop-coordinator', targets: [`127.0.0.1:${ports.coordinator}`] },
        { job: 'metaloop-worker', targets: ports.workers.map((p) => `127.0.0.1:${p}`) },
      ],
      RULES,
    );
    procs.push(
      new Proc('prometheus', PROMETHEUS, [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${ports.prometheus}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ]),
    );
    prom = new PromClient(`http://127.0.0.1:${ports.prometheus}`);
    await waitFor('prometheus to be ready', 60_000, async () => (await httpStatus(`${prom.base}/-/ready`)) === 200, logs, dead);

    const specFile = join(dir, 'spec.yaml');
    writeFileSync(specFile, SPEC);
    const submit = spawnSync(process.execPath, [METALOOP_CLI, 'submit', specFile], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(submit.status, 0, `metaloop submit failed:\n${submit.stdout}\n${submit.stderr}\n${logs()}`);
    runId = submit.stdout.trim().split('\n').pop()!.trim();
    assert.match(runId, /^[A-Za-z0-9._-]+$/, `unexpected run id ${JSON.stringify(submit.stdout)}`);
    const r = JSON.stringify(runId);

    // Enough history for every panel: an evaluation, a checkpoint, parameter fetches, shard
    // timings, both workers busy, and at least 10 scrapes of every target.
    const ready: [string, string][] = [
      ['10 scrapes of each target', `min(count_over_time(up[5m])) >= 10 and count(up == 1) == 3`],
      ['an evaluation', `metaloop_eval_loss{run=${r}}`],
      ['a checkpoint', `metaloop_checkpoints_total{run=${r}} > 0`],
      ['meta-steps', `metaloop_meta_steps_total{run=${r}} >= 20`],
      ['tasks on both workers', `count(metaloop_worker_tasks_total{run=${r}} > 0) == 2`],
      ['parameter fetches', `sum(metaloop_worker_param_fetch_duration_seconds_count) > 0`],
    ];
    for (const [what, expr] of ready) {
      await waitFor(what, 180_000, async () => (await prom.vector(expr)).length > 0, logs, dead);
    }
    // Let the 1 s rule evaluation run on the data, then a few more scrapes.
    await new Promise((res) => setTimeout(res, 3000));
  });

  after(async () => {
    // Every process by pid, even when `before` failed half-way.
    for (const p of [...procs].reverse()) await p.stop().catch(() => {});
    await nats?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('every endpoint serves /metrics, /healthz and /readyz', async () => {
    for (const port of [ports.coordinator, ...ports.workers]) {
      const base = `http://127.0.0.1:${port}`;
      assert.equal(await httpStatus(`${base}/healthz`), 200);
      assert.equal(await httpStatus(`${base}/readyz`), 200);
      const text = await (await fetch(`${base}/metrics`)).text();
      assert.match(text, /^process_resident_memory_bytes(\{[^}]*\})? \d/m, `default process metrics on ${base}`);
      assert.match(text, /^# TYPE metaloop_/m);
    }
    const up = await prom.vector('up');
    assert.equal(up.length, 3, JSON.stringify(up));
    for (const s of up) assert.equal(s.value?.[1], '1', `target ${s.metric.instance} is down`);
  });

  it('the metrics describe the run: 2 live workers, steps, losses, both workers and their backend', async () => {
    const r = JSON.stringify(runId);
    assert.equal(await prom.scalar('max(metaloop_live_workers)'), 2);
    assert.equal(await prom.scalar(`max(metaloop_run_target_steps{run=${r}})`), STEPS);
    const step = await prom.scalar(`max(metaloop_run_step{run=${r}})`);
    assert.ok(step !== undefined && step >= 20 && step < STEPS, `step ${step}`);
    for (const phase of ['pre', 'post']) {
      const loss = await prom.scalar(`metaloop_meta_train_loss{run=${r},phase="${phase}"}`);
      assert.ok(loss !== undefined && Number.isFinite(loss) && loss >= 0, `${phase} loss ${loss}`);
    }
    const workers = (await prom.vector(`sum by (worker) (metaloop_worker_tasks_total{run=${r}})`)).map((s) => s.metric.worker).sort();
    assert.deepEqual(workers, ['obs-worker-1', 'obs-worker-2']);
    const backends = await prom.vector('metaloop_worker_backend_info == 1');
    assert.equal(backends.length, 2);
    for (const b of backends) assert.ok(b.metric.backend, 'backend label');
    // Issue 18: each worker names its GPU; ours compute on CPUs.
    const gpus = await prom.vector('metaloop_worker_gpu_info == 1');
    assert.deepEqual(gpus.map((g) => [g.metric.worker, g.metric.gpu, g.metric.memory_bytes]).sort(), [
      ['obs-worker-1', 'no GPU', '0'],
      ['obs-worker-2', 'no GPU', '0'],
    ]);
    // The coordinator accepted one result per shard: tasks accepted = 10 per meta-step.
    const steps = await prom.scalar(`max(metaloop_meta_steps_total{run=${r}})`);
    const tasks = await prom.scalar(`max(metaloop_tasks_total{run=${r}})`);
    assert.ok(steps !== undefined && tasks !== undefined && tasks >= steps * 10, `tasks ${tasks} for ${steps} steps`);
    // The rate panels saw the run move while Prometheus watched it.
    for (const expr of [`sum(rate(metaloop_meta_steps_total{run=${r}}[5s]))`, `sum(rate(metaloop_worker_tasks_total{run=${r}}[5s]))`]) {
      const peak = await prom.scalar(`max_over_time((${expr})[5m:1s])`);
      assert.ok(peak !== undefined && peak > 0, `${expr} was never > 0 (peak ${peak})`);
    }
  });

  it('every dashboard expression returns data (variables substituted)', async (t) => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    // Query variables first: the run variable must offer this run.
    const vars = labelValuesVariables(dashboard);
    assert.ok(vars.some((v) => v.name === 'run'), 'the dashboard has a run variable');
    for (const v of vars) {
      const values = await prom.get<{ status: string; data: string[] }>(`/api/v1/label/${v.label}/values`, { 'match[]': v.selector });
      assert.equal(values.status, 'success');
      if (v.name === 'run') assert.ok(values.data.includes(runId), `run variable offers ${JSON.stringify(values.data)}`);
      else assert.ok(values.data.length > 0, `variable ${v.name} has values`);
    }
    const values: Record<string, string> = {
      ...staticVariables(dashboard),
      run: runId.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&'),
      datasource: 'prometheus',
      __rate_interval: '10s',
      __interval: '2s',
      __interval_ms: '2000',
      __range: '5m',
      __range_s: '300',
    };
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length >= 30, `only ${queries.length} dashboard queries`);
    const failures: string[] = [];
    let withData = 0;
    for (const q of queries) {
      const expr = substitute(q.expr, values);
      const res = await prom.query(expr);
      if (res.status !== 'success') {
        failures.push(`[${q.where}] invalid: ${expr}\n    ${res.errorType}: ${res.error}`);
        continue;
      }
      const n = sampleCount(res);
      if (EXTERNAL.test(expr)) continue; // exporter not part of this stack: valid is enough
      if (CLASSIFICATION_ONLY.test(expr)) {
        if (n !== 0) failures.push(`[${q.where}] a regression run must not report accuracy: ${expr}`);
        continue;
      }
      if (RL_ONLY.test(expr)) {
        if (n !== 0) failures.push(`[${q.where}] a supervised run must not report returns: ${expr}`);
        continue;
      }
      if (n === 0) failures.push(`[${q.where}] no data: ${expr}`);
      else withData++;
    }
    t.diagnostic(`${queries.length} dashboard queries, ${withData} with data, at step ${await prom.scalar(`max(metaloop_run_step)`)}`);
    assert.deepEqual(failures, [], `${failures.length} of ${queries.length} dashboard queries failed:\n${failures.join('\n')}`);
    assert.ok(withData >= 30, `${withData} queries returned data`);
  });

  it('every alert rule is loaded, healthy, a valid query, and quiet on a healthy run', async () => {
    const res = await prom.get<{
      status: string;
      data: { groups: { name: string; rules: { name: string; query: string; type: string; health: string; lastError?: string; lastEvaluation: string }[] }[] };
    }>('/api/v1/rules');
    assert.equal(res.status, 'success');
    const rules = res.data.groups.flatMap((g) => g.rules);
    const names = rules.map((r) => r.name).sort();
    for (const expected of ['MetaloopCheckpointTooOld', 'MetaloopLossNotFinite', 'MetaloopNoLiveWorkers', 'MetaloopResultRejectionRateHigh', 'MetaloopRunStalled']) {
      assert.ok(names.includes(expected), `rule ${expected} loaded (have ${names.join(', ')})`);
    }
    for (const rule of rules) {
      assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
      assert.ok(!rule.lastEvaluation.startsWith('0001'), `${rule.name} was evaluated`);
      const q = await prom.query(rule.query);
      assert.equal(q.status, 'success', `${rule.name}: ${q.error ?? ''}`);
      if (rule.type === 'alerting') assert.equal(sampleCount(q), 0, `${rule.name} fires on a healthy run: ${JSON.stringify(q.data?.result)}`);
    }
    const alerts = await prom.get<{ data: { alerts: { labels: Record<string, string>; state: string }[] } }>('/api/v1/alerts');
    assert.deepEqual(alerts.data.alerts.map((a) => `${a.labels.alertname}:${a.state}`), []);
  });

  it('promtool check rules passes', () => {
    const r = spawnSync(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  });
});

/**
 * A real deployment on loopback for the transport and scaling suites: nats-server, the
 * coordinator CLI and N worker CLI processes (all tracked by pid), a NatsTransport client that
 * submits runs through the API, timestamps every step event and scrapes the /metrics endpoints.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '@metaloop/coordinator';
import { metaloop, NatsTransport, startNatsServer, subjects } from '@metaloop/shared';
import { ROOT } from './machine.mjs';
import { spawnTracked, stopAll, stopChild } from './procs.mjs';

export const COORDINATOR_CLI = join(ROOT, 'coordinator', 'dist', 'cli.js');
export const WORKER_CLI = join(ROOT, 'worker', 'dist', 'cli.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function assertClis() {
  for (const p of [COORDINATOR_CLI, WORKER_CLI]) {
    if (!existsSync(p)) throw new Error(`${p} is missing: build first (npm run build)`);
  }
}

/** A process whose log announces its metrics port; resolves { child, metricsUrl }. */
async function startWithMetrics(args, label, timeoutMs = 60_000) {
  let port = null;
  const child = spawnTracked(process.execPath, args, {
    onLine: (line) => {
      const m = /serving \/metrics.*port=(\d+)/.exec(line);
      if (m) port = Number(m[1]);
    },
  });
  const deadline = Date.now() + timeoutMs;
  while (port === null) {
    if (child.exitCode !== null) throw new Error(`${label} exited (${child.exitCode}): ${child.tail()}`);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`${label} did not serve /metrics within ${timeoutMs} ms: ${child.tail()}`);
    }
    await sleep(50);
  }
  return { child, metricsUrl: `http://127.0.0.1:${port}/metrics` };
}

/** Sum of `<name>_sum` and `<name>_count` (or a plain counter) over every label set. */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
  }
  return out;
}

async function scrape(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return parseMetrics(await res.text());
}

export async function startCluster({ workers, log }) {
  assertClis();
  const server = await startNatsServer();
  const children = [];
  const cluster = { server, children, coordinator: null, workers: [], transport: null };
  try {
    const coordinator = await startWithMetrics([COORDINATOR_CLI, '--nats', server.url, 'coordinator', '--metrics-port', '0', '--metrics-host', '127.0.0.1'], 'coordinator');
    children.push(coordinator.child);
    cluster.coordinator = coordinator;
    for (let i = 0; i < workers; i++) {
      const w = await startWithMetrics([WORKER_CLI, '--nats', server.url, '--id', `bench-w${i}`, '--metrics-port', '0', '--metrics-host', '127.0.0.1'], `worker ${i}`);
      children.push(w.child);
      cluster.workers.push(w);
    }
    cluster.transport = await NatsTransport.create({ servers: server.url, name: 'bench-client' });
    log?.(`cluster: nats ${server.url} (pid ${server.pid}), coordinator pid ${coordinator.child.pid}, workers ${cluster.workers.map((w) => w.child.pid).join(', ')}`);
    return cluster;
  } catch (err) {
    await stopCluster(cluster);
    throw err;
  }
}

export async function stopCluster(cluster) {
  await cluster.transport?.close().catch(() => undefined);
  await stopAll([...cluster.children].reverse(), 5000);
  await cluster.server.stop();
}

/**
 * Submit `spec` (an object), wait for it to end, and time it from the step events: returns the
 * arrival time of each step event, the final record and metric deltas over the run's training
 * steps (scraped when the last step event arrives, before the final evaluation ends).
 */
export async function timedRun(cluster, spec, { timeoutMs }) {
  const client = new ApiClient({ transport: cluster.transport, timeoutMs: 10_000 });
  const steps = spec.outer.steps;
  const arrivals = new Map();
  let runId = null;
  let lastStep = null;
  const lastStepSeen = new Promise((resolve) => (lastStep = resolve));
  const sub = cluster.transport.subscribe(subjects('metaloop').eventsAll(), (data) => {
    const ev = metaloop.Event.decode(data);
    if (ev.kind !== metaloop.Event.Kind.KIND_STEP || (runId && ev.runId !== runId)) return;
    const at = performance.now();
    if (!arrivals.has(`${ev.runId}:${ev.step}`)) arrivals.set(`${ev.runId}:${ev.step}`, at);
    if (ev.step === steps) lastStep(ev.runId);
  });
  const urls = [cluster.coordinator.metricsUrl, ...cluster.workers.map((w) => w.metricsUrl)];
  const before = await Promise.all(urls.map(scrape));
  const t0 = performance.now();
  const record = await client.submit(JSON.stringify(spec), 'bench');
  runId = record.runId;
  const timer = setTimeout(() => void client.cancel(runId).catch(() => undefined), timeoutMs);
  let after;
  try {
    await Promise.race([lastStepSeen, sleep(timeoutMs).then(() => Promise.reject(new Error(`run ${runId} did not finish ${steps} steps in ${timeoutMs} ms`)))]);
    after = await Promise.all(urls.map(scrape));
    const final = await client.waitFor(runId, { pollMs: 200 });
    const state = metaloop.RunState[final.state];
    if (state !== 'RUN_STATE_SUCCEEDED') throw new Error(`run ${runId} ended ${state}: ${final.error}`);
    const stepAt = Array.from({ length: steps + 1 }, (_, k) => arrivals.get(`${runId}:${k}`) ?? null);
    const delta = (i, name) => (after[i].get(name) ?? 0) - (before[i].get(name) ?? 0);
    const workers = cluster.workers.map((_, j) => (name) => delta(j + 1, name));
    return { runId, t0, stepAt, record: final, coordinator: (name) => delta(0, name), workers };
  } finally {
    clearTimeout(timer);
    await sub.close();
  }
}

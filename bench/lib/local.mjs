/**
 * Helpers of the transport and scaling suites: a nats-server with the bare request/reply floor
 * beside it, one timed `metaloop local` run in a child process (bench/lib/local-run.mjs), and the
 * rate of a run over the steps after its warm-up (the same statistic for every arm).
 */
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer } from '@metaloop/shared';
import { connect } from '@nats-io/transport-node';
import { spawnTracked, stopChild } from './procs.mjs';
import { summary } from './stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const LOCAL_RUN = join(HERE, 'local-run.mjs');
const ECHO = join(HERE, 'nats-echo.mjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on loopback. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * nats-server (-js, loopback, its monitoring endpoint on `monitorUrl` for the message counters)
 * + an echo process + a raw client for round trips.
 */
export async function startFloor(log) {
  const monitorPort = await freePort();
  const server = await startNatsServer({ args: ['-m', String(monitorPort)] });
  let echo = null;
  let nc = null;
  try {
    let ready = false;
    echo = spawnTracked(process.execPath, [ECHO, server.url], { onLine: (l) => l === 'ready' && (ready = true) });
    for (const deadline = Date.now() + 30_000; !ready; await sleep(20)) {
      if (echo.exitCode !== null || Date.now() > deadline) throw new Error(`nats echo process did not start: ${echo.tail()}`);
    }
    nc = await connect({ servers: server.url, name: 'bench-rtt' });
    log?.(`nats-server ${server.url} (pid ${server.pid}, monitoring :${monitorPort}), echo pid ${echo.pid}`);
    return { server, echo, nc, url: server.url, pid: server.pid, monitorUrl: `http://127.0.0.1:${monitorPort}` };
  } catch (err) {
    await nc?.close().catch(() => undefined);
    await stopChild(echo);
    await server.stop();
    throw err;
  }
}

export async function stopFloor(f) {
  await f.nc?.close().catch(() => undefined);
  await stopChild(f.echo);
  await f.server.stop();
}

/** `n` sequential request/reply round trips (16-byte payload) to the echo process, ms each. */
export async function roundTrips(f, n) {
  const payload = new Uint8Array(16);
  const out = [];
  for (let i = 0; i < n + 5; i++) {
    const t = performance.now();
    await f.nc.request('bench.echo', payload, { timeout: 5000 });
    if (i >= 5) out.push(performance.now() - t);
  }
  return out;
}

/**
 * One `metaloop local` run in a child process: { spec, workers, embedded, dispatch, natsUrl?, cpuFrom } →
 * local-run.mjs's result. `env` adds variables (the worker processes inherit them).
 */
export async function localRun(cfg, { env, timeoutMs = 600_000 } = {}) {
  let result = null;
  const child = spawnTracked(process.execPath, [LOCAL_RUN, JSON.stringify(cfg)], {
    env: { ...process.env, ...env },
    onLine: (line, stream) => {
      if (stream === 'out' && line.startsWith('result ')) result = JSON.parse(line.slice(7));
    },
  });
  const timer = setTimeout(() => void stopChild(child, 10_000), timeoutMs);
  const code = await new Promise((r) => child.once('exit', r));
  clearTimeout(timer);
  if (!result) throw new Error(`metaloop local run (${cfg.embedded ? 'embedded' : 'nats'}, ${cfg.workers} workers, dispatch ${cfg.dispatch}) failed (exit ${code}): ${child.tail()}`);
  if (result.record.status !== 'succeeded') throw new Error(`run ${result.record.runId} ended ${result.record.status}: ${result.record.error ?? ''}`);
  return result;
}

/** Meta-steps/s over steps warmup+1..S, from the step events' arrival times. */
export function stepRate(r, warmup) {
  const S = r.stepAt.length - 1;
  const from = r.stepAt[warmup];
  const to = r.stepAt[S];
  if (from === null || to === null || to <= from) throw new Error(`run ${r.record.runId}: step events ${warmup} or ${S} missing`);
  return ((S - warmup) / (to - from)) * 1000;
}

/** Per-step times (ms) after the warm-up, for spreads. */
export function stepTimes(r, warmup) {
  const out = [];
  for (let k = warmup + 1; k < r.stepAt.length; k++) if (r.stepAt[k] !== null && r.stepAt[k - 1] !== null) out.push(r.stepAt[k] - r.stepAt[k - 1]);
  return out;
}

/**
 * CPU-seconds per measured meta-step of every process of the arm: { coordinator (this run's own
 * process: in-process workers too), workers (Σ of the worker processes), nats (the server; NaN
 * when not measured), total }; and messages per meta-step through the server ({ in, out }: /varz
 * in_msgs and out_msgs deltas), or null.
 */
export function cpuPerStep(r, warmup) {
  const steps = r.stepAt.length - 1 - warmup;
  const self = r.cpu[r.selfPid] / steps;
  const workers = r.workers.filter((w) => w.pid !== r.selfPid).reduce((s, w) => s + (r.cpu[w.pid] ?? NaN), 0) / steps;
  const nats = Number.isFinite(r.natsCpu) ? r.natsCpu / steps : NaN;
  const total = self + workers + (Number.isFinite(nats) ? nats : 0);
  const msgs = r.msgs ? { in: r.msgs.in / steps, out: r.msgs.out / steps } : null;
  return { coordinator: self, workers, nats, total, msgs };
}

/** Cores each process kept busy over the measured steps: { self, workers: [..] } (CPU s / wall s). */
export function coresBusy(r) {
  if (!r.cpuWallMs) return { self: NaN, workers: [] };
  const wall = r.cpuWallMs / 1000;
  const self = r.cpu[r.selfPid] / wall;
  const workers = r.workers.filter((w) => w.pid !== r.selfPid).map((w) => r.cpu[w.pid] / wall);
  return { self, workers };
}

/** "tensorflow (cpu, libtensorflow …)" for each distinct backend the run's workers reported. */
export function backendsOf(r) {
  const set = new Set(r.workers.map((w) => `${w.backend} (${w.device})`));
  return set.size ? [...set].join('; ') : 'unknown (no heartbeat)';
}

export { summary };

#!/usr/bin/env node
/**
 * One `metaloop local` run, timed by its step events, for the transport and scaling suites:
 * `node local-run.mjs '<json>'` with { spec, workers, embedded, dispatch, natsUrl? }; `dispatch`
 * (`queue` or `direct`) is required: every arm names how its shards reach the workers rather
 * than inheriting the product's default.
 * It calls the product's own entry point (`runLocal` of @metaloop/cli, what `metaloop
 * local` runs): embedded = the in-process transport with in-process workers; otherwise the
 * coordinator here on the nats-server at natsUrl and `workers` metaloop-worker processes (they
 * inherit this process's environment, e.g. TF_NUM_INTRAOP_THREADS). Both arms are timed the same
 * way: the arrival of each step event here (performance.now()).
 * CPU: /proc/<pid>/stat of this process (the coordinator; in-process workers too), of every
 * worker process (heartbeats carry the pid) and of the nats-server (`natsPid`, when given), read
 * when step `cpuFrom` and the last step arrive; with `natsMonitor` (the server's monitoring URL)
 * its /varz message counters at the same two moments. `slowWorkerMs`: worker process 1 holds each
 * shard that long (the straggler of the async bench row); `spec.workers.staleness` picks sync or async.
 * Prints one line `result <json>`: { stepAt[], record, workers: [{ id, backend, device, pid }],
 * cpu: { pid: cpuSeconds }, natsCpu, msgs: { in, out } | null, cpuWallMs, computePath,
 * wallSeconds, mode, dispatch }.
 */
import { readFileSync } from 'node:fs';
import { runLocal, summaryJson } from '@metaloop/cli';
import { createLogger, validateSpec } from '@metaloop/shared';
import { compileRun } from '@metaloop/worker';

const cfg = JSON.parse(process.argv[2] ?? '{}');
if (!cfg.spec || !Number.isInteger(cfg.workers) || !['queue', 'direct'].includes(cfg.dispatch)) {
  console.error("usage: local-run.mjs '{\"spec\":{…},\"workers\":N,\"embedded\":bool,\"dispatch\":\"queue\"|\"direct\",\"natsUrl\":\"nats://…\",\"cpuFrom\":k}'");
  process.exit(2);
}
// Stop (the run, its workers, then this process) when the bench stops us or goes away.
const aborter = new AbortController();
let fatal = null;
const stop = (why) => {
  fatal ??= why;
  aborter.abort();
};
process.on('SIGTERM', () => stop('SIGTERM'));
setInterval(() => process.ppid === 1 && stop('the bench is gone'), 1000).unref();

const TICKS = 100; // USER_HZ on Linux
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS; // utime + stime
  } catch {
    return NaN;
  }
}

const spec = validateSpec(cfg.spec);
const steps = spec.outer.steps;
const cpuFrom = cfg.cpuFrom ?? 0;
const stepAt = new Array(steps + 1).fill(null);
const workers = new Map();
let cpu0 = null;
let cpu1 = null;
/** The server's message counters (/varz), or null without a monitoring URL. */
const varz = async () => {
  if (!cfg.natsMonitor) return null;
  const v = await fetch(`${cfg.natsMonitor}/varz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json());
  return { in: v.in_msgs, out: v.out_msgs };
};
const snap = () => ({
  at: performance.now(),
  cpu: Object.fromEntries([...pidsNow()].map((p) => [p, cpuSeconds(p)])),
  nats: cfg.natsPid ? cpuSeconds(cfg.natsPid) : NaN,
  msgs: varz().catch(() => null),
});
const pidsNow = () => new Set([process.pid, ...[...workers.values()].map((w) => w.pid).filter((p) => p > 0)]);

const run = compileRun(spec);
// A worker process that dies or never reports makes the timing meaningless: fail at once.
const FATAL = ['worker process exited', 'not every worker reported in time; starting anyway'];
const logger = createLogger('bench-local', {
  level: 'warn',
  format: 'json',
  write: (l) => {
    console.error(l);
    if (FATAL.includes(JSON.parse(l).msg)) stop(l);
  },
});
const result = await runLocal({
  signal: aborter.signal,
  spec,
  source: 'bench',
  workers: cfg.workers,
  embedded: cfg.embedded === true,
  dispatch: cfg.dispatch,
  nats: cfg.natsUrl ? { nats: cfg.natsUrl } : undefined,
  prefix: 'metaloop',
  logger,
  // The run's end is polled for (a status request and its reply): rarely, they count in the messages per step.
  pollMs: 1000,
  onEvent: (ev) => {
    if (ev.kind !== 1 /* KIND_STEP */ || ev.step > steps || stepAt[ev.step] !== null) return;
    stepAt[ev.step] = performance.now();
    if (ev.step === cpuFrom) cpu0 = snap();
    if (ev.step === steps) cpu1 = snap();
  },
  onHeartbeat: (hb) => {
    if (!workers.has(hb.workerId)) workers.set(hb.workerId, { id: hb.workerId, backend: hb.backend, device: hb.device, pid: hb.pid });
  },
  ...(cfg.slowWorkerMs ? { workerEnv: (i) => (i === 0 ? { METALOOP_WORKER_SLOW_SHARD_MS: String(cfg.slowWorkerMs) } : {}) } : {}),
}).catch((err) => {
  stop(String(err));
  return null;
});
if (fatal || !result) {
  console.log(`error ${fatal}`);
  process.exit(1);
}
const cpu = {};
if (cpu0 && cpu1) for (const p of Object.keys(cpu1.cpu)) cpu[p] = cpu1.cpu[p] - (cpu0.cpu[p] ?? NaN);
const [m0, m1] = cpu0 && cpu1 ? await Promise.all([cpu0.msgs, cpu1.msgs]) : [null, null];
const out = {
  mode: result.mode,
  dispatch: cfg.dispatch,
  wallSeconds: result.wallSeconds,
  record: summaryJson(result.record),
  staleness: { mean: result.record.stalenessMean ?? 0, max: result.record.stalenessMax ?? 0 },
  stepAt,
  workers: [...workers.values()],
  cpu,
  natsCpu: cpu0 && cpu1 ? cpu1.nats - cpu0.nats : NaN,
  msgs: m0 && m1 ? { in: m1.in - m0.in, out: m1.out - m0.out } : null,
  cpuWallMs: cpu0 && cpu1 ? cpu1.at - cpu0.at : null,
  computePath: typeof run.fused === 'string' ? 'tfjs' : 'fused-mlp',
  selfPid: process.pid,
};
console.log(`result ${JSON.stringify(out)}`);
process.exit(0);

/**
 * scaling: Conv4 5w1s throughput (tasks/s) of `metaloop local` on a real nats-server with 1, 2, …
 * worker processes, each limited to one compute thread (TF_NUM_INTRAOP_THREADS = 1,
 * TF_NUM_INTEROP_THREADS = 1, OMP_NUM_THREADS = 1 for tfjs-node; tfjs-backend-wasm runs one thread
 * in Node, which the worker's device string states), so N workers on N cores is a fair test; as a
 * ratio to one worker. The CPU each worker process used is read from /proc to show the limit held.
 * Worker counts come from BENCH_WORKERS (default "1,2": this machine has 2 cores); on a bigger
 * machine: BENCH_WORKERS=1,2,4,8 npm run bench -- scaling
 */
import os from 'node:os';
import { backendsOf, coresBusy, localRun, startFloor, stepRate, stopFloor } from '../lib/local.mjs';
import { conv4Spec } from '../lib/specs.mjs';
import { fmt, median } from '../lib/stats.mjs';

export const title = 'scaling — Conv4 throughput with 1…N single-threaded worker processes';
export const timeoutMs = 900_000;

const TARGET = 1.8;
/** One compute thread per worker process (libtensorflow reads these at start-up). */
export const ONE_THREAD_ENV = { TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1', OMP_NUM_THREADS: '1' };

function workerCounts() {
  const raw = process.env.BENCH_WORKERS ?? '1,2';
  const counts = raw.split(',').map((s) => Number(s.trim()));
  if (!counts.length || counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_WORKERS must be a comma-separated list of worker counts >= 1, got ${raw}`);
  return [...new Set(counts)].sort((a, b) => a - b);
}

export async function run({ quick, log, signal }) {
  const counts = workerCounts();
  const maxN = Math.max(...counts);
  const reps = 1;
  // Two one-task shards per worker of the largest count (every count that divides it splits evenly).
  const spec = conv4Spec(3, { metaBatch: 2 * maxN, shardSize: 1 });
  const warmup = 1;
  const byN = new Map(counts.map((n) => [n, []]));
  const floor = await startFloor(log);
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const n of rep % 2 === 0 ? counts : [...counts].reverse()) {
        if (signal.aborted) throw new Error('aborted');
        const r = await localRun({ spec, workers: n, embedded: false, natsUrl: floor.url, cpuFrom: warmup }, { env: ONE_THREAD_ENV });
        const x = { tasksPerSec: stepRate(r, warmup) * spec.outer.metaBatch, backend: backendsOf(r), path: r.computePath, cores: coresBusy(r) };
        byN.get(n).push(x);
        log(`conv4 ${n} worker(s): ${fmt(x.tasksPerSec)} tasks/s; cores per worker ${x.cores.workers.map((c) => fmt(c, 2)).join(', ')} (${x.backend})`);
      }
    }
  } finally {
    await stopFloor(floor);
  }
  const base = median(byN.get(counts[0]).map((x) => x.tasksPerSec));
  const rows = counts.map((n) => {
    const xs = byN.get(n);
    const v = median(xs.map((x) => x.tasksPerSec));
    const perWorker = xs.flatMap((x) => x.cores.workers).filter(Number.isFinite);
    return { n, tasksPerSec: v, samples: xs.map((x) => x.tasksPerSec), ratio: v / base, backend: xs[0].backend, path: xs[0].path, maxCoresPerWorker: perWorker.length ? Math.max(...perWorker) : NaN, coordinatorCores: median(xs.map((x) => x.cores.self)) };
  });
  const figures = rows.flatMap((r) => [
    { id: `conv4_tasks_per_sec_w${r.n}`, unit: 'tasks/s', value: r.tasksPerSec, samples: r.samples, workers: r.n, backend: r.backend },
    { id: `conv4_ratio_w${r.n}`, unit: `ratio (throughput / ${counts[0]} worker${counts[0] > 1 ? 's' : ''})`, value: r.ratio, workers: r.n },
    { id: `conv4_max_cores_per_worker_w${r.n}`, unit: 'cores (CPU s / wall s)', value: r.maxCoresPerWorker, workers: r.n },
  ]);
  const two = rows.find((r) => r.n === 2);
  const targets = two && counts[0] === 1 ? [{ what: 'conv4: 2 single-threaded workers / 1', target: `>= ${TARGET}`, value: Number(two.ratio.toFixed(3)), met: two.ratio >= TARGET }] : [];
  const range = (xs) => (xs.length > 1 ? ` (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : '');
  const lines = [
    `Conv4 5w1s MAML (2nd order), ${spec.outer.metaBatch} tasks per step in ${spec.outer.metaBatch} one-task shards, ${spec.outer.steps} steps (−${warmup} warm-up). Each run: \`runLocal\` (what \`metaloop local\` runs) in a fresh child process, the coordinator on a real nats-server on loopback, N \`metaloop-worker\` processes started by it with ${Object.entries(ONE_THREAD_ENV).map(([k, v]) => `${k}=${v}`).join(', ')}. Tasks/s over the steps after the warm-up (step events), median of ${reps} run${reps > 1 ? 's' : ''} per worker count${reps > 1 ? ' (min–max), counts alternating in order' : ''}. Worker counts: BENCH_WORKERS=${counts.join(',')} on ${os.cpus().length} cores. "Max cores per worker" = the largest CPU s / wall s of any worker process over the measured steps (/proc): ≤ ~1 shows the one-thread limit held.`,
    '',
    '| workers | compute path | backend | tasks/s | ratio to 1 worker | max cores per worker | coordinator cores | target |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.n} | ${r.path} | ${r.backend} | ${fmt(r.tasksPerSec)}${range(r.samples)} | **${fmt(r.ratio, 3)}** | ${fmt(r.maxCoresPerWorker, 2)} | ${fmt(r.coordinatorCores, 2)} | ${r.n === 2 && targets.length ? `≥ ${TARGET}: ${targets[0].met ? 'met' : '**missed**'}` : '—'} |`),
    '',
    'On a bigger machine: `BENCH_WORKERS=1,2,4,8 npm run bench -- scaling` (the meta-batch is 2 × the largest count, so every worker gets shards).',
  ];
  const notes = targets.map((t) => (t.met ? `Target met in this run: 2 workers / 1 = ${t.value}.` : `Missed in this run: 2 workers / 1 = ${t.value} (target ${t.target}).`));
  return { figures, table: lines.join('\n'), notes, targets, config: { counts, reps, env: ONE_THREAD_ENV, spec, warmup } };
}

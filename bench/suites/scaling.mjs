/**
 * scaling: Conv4 5w1s throughput (tasks/s) of `metaloop local` on a real nats-server with 1, 2, …
 * worker processes, each limited to one compute thread (TF_NUM_INTRAOP_THREADS = 1,
 * TF_NUM_INTEROP_THREADS = 1, OMP_NUM_THREADS = 1 for tfjs-node; tfjs-backend-wasm runs one thread
 * in Node, which the worker's device string states), so N workers on N cores is a fair test; as a
 * ratio to one worker, once per dispatch mode (`direct`: shards assigned over core NATS; `queue`:
 * the JetStream WorkQueue), each selected explicitly, never the product's default. The CPU each
 * worker process used is read from /proc to show the limit held.
 * Worker counts come from BENCH_WORKERS (default "1,2": this machine has 2 cores); on a bigger
 * machine: BENCH_WORKERS=1,2,4,8 npm run bench -- scaling
 */
import os from 'node:os';
import { backendsOf, coresBusy, localRun, startFloor, stepRate, stopFloor } from '../lib/local.mjs';
import { conv4Spec } from '../lib/specs.mjs';
import { fmt, median } from '../lib/stats.mjs';

export const title = 'scaling — Conv4 throughput with 1…N single-threaded worker processes, direct and queue dispatch';
export const timeoutMs = 900_000;

const TARGET = 1.8;
/** Each dispatch mode measured, set explicitly on every run. */
export const DISPATCH = ['direct', 'queue'];
/** One compute thread per worker process (libtensorflow reads these at start-up). */
export const ONE_THREAD_ENV = { TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1', OMP_NUM_THREADS: '1' };

function workerCounts() {
  const raw = process.env.BENCH_WORKERS ?? '1,2';
  const counts = raw.split(',').map((s) => Number(s.trim()));
  if (!counts.length || counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_WORKERS must be a comma-separated list of worker counts >= 1, got ${raw}`);
  return [...new Set(counts)].sort((a, b) => a - b);
}

export async function run({ quick, log, signal, command }) {
  const counts = workerCounts();
  const maxN = Math.max(...counts);
  const reps = quick ? 1 : 3;
  // Two one-task shards per worker of the largest count (every count that divides it splits evenly).
  const spec = conv4Spec(quick ? 2 : 5, { metaBatch: 2 * maxN, shardSize: 1 });
  const warmup = 1;
  const by = new Map(DISPATCH.flatMap((d) => counts.map((n) => [`${d}/${n}`, []])));
  const floor = await startFloor(log);
  try {
    let turn = 0;
    for (let rep = 0; rep < reps; rep++) {
      for (const n of rep % 2 === 0 ? counts : [...counts].reverse()) {
        // Alternate which dispatch mode goes first, so load drift hits both.
        for (const dispatch of turn++ % 2 === 0 ? DISPATCH : [...DISPATCH].reverse()) {
          if (signal.aborted) throw new Error('aborted');
          const r = await localRun({ spec, workers: n, embedded: false, dispatch, natsUrl: floor.url, cpuFrom: warmup }, { env: ONE_THREAD_ENV });
          const x = { tasksPerSec: stepRate(r, warmup) * spec.outer.metaBatch, backend: backendsOf(r), path: r.computePath, cores: coresBusy(r), dispatch: r.dispatch };
          by.get(`${dispatch}/${n}`).push(x);
          log(`conv4 ${n} worker(s), dispatch ${x.dispatch}: ${fmt(x.tasksPerSec)} tasks/s; cores per worker ${x.cores.workers.map((c) => fmt(c, 2)).join(', ')} (${x.backend})`);
        }
      }
    }
  } finally {
    await stopFloor(floor);
  }
  const rows = DISPATCH.flatMap((dispatch) => {
    const base = median(by.get(`${dispatch}/${counts[0]}`).map((x) => x.tasksPerSec));
    return counts.map((n) => {
      const xs = by.get(`${dispatch}/${n}`);
      const v = median(xs.map((x) => x.tasksPerSec));
      const perWorker = xs.flatMap((x) => x.cores.workers).filter(Number.isFinite);
      return { dispatch, n, tasksPerSec: v, samples: xs.map((x) => x.tasksPerSec), ratio: v / base, backend: xs[0].backend, path: xs[0].path, maxCoresPerWorker: perWorker.length ? Math.max(...perWorker) : NaN, coordinatorCores: median(xs.map((x) => x.cores.self)) };
    });
  });
  const figures = rows.flatMap((r) => [
    { id: `conv4_${r.dispatch}_tasks_per_sec_w${r.n}`, unit: 'tasks/s', value: r.tasksPerSec, samples: r.samples, workers: r.n, dispatch: r.dispatch, backend: r.backend },
    { id: `conv4_${r.dispatch}_ratio_w${r.n}`, unit: `ratio (throughput / ${counts[0]} worker${counts[0] > 1 ? 's' : ''}, same dispatch)`, value: r.ratio, workers: r.n, dispatch: r.dispatch },
    { id: `conv4_${r.dispatch}_max_cores_per_worker_w${r.n}`, unit: 'cores (CPU s / wall s)', value: r.maxCoresPerWorker, workers: r.n, dispatch: r.dispatch },
  ]);
  const targets = counts[0] === 1 ? rows.filter((r) => r.n === 2).map((r) => ({ what: `conv4, ${r.dispatch} dispatch: 2 single-threaded workers / 1`, dispatch: r.dispatch, target: `>= ${TARGET}`, value: Number(r.ratio.toFixed(3)), met: r.ratio >= TARGET })) : [];
  const verdict = (r) => {
    const t = targets.find((x) => x.dispatch === r.dispatch);
    return r.n === 2 && t ? `≥ ${TARGET}: ${t.met ? 'met' : '**missed**'}` : '—';
  };
  const range = (xs) => (xs.length > 1 ? ` (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : '');
  const lines = [
    `Conv4 5w1s MAML (2nd order), ${spec.outer.metaBatch} tasks per step in ${spec.outer.metaBatch} one-task shards, ${spec.outer.steps} steps (−${warmup} warm-up). Each run: \`runLocal\` (what \`metaloop local\` runs) in a fresh child process with its dispatch mode set explicitly (\`--dispatch direct\`: shards assigned over core NATS; \`--dispatch queue\`: the JetStream WorkQueue), the coordinator on a real nats-server on loopback, N \`metaloop-worker\` processes started by it with ${Object.entries(ONE_THREAD_ENV).map(([k, v]) => `${k}=${v}`).join(', ')}. Tasks/s over the steps after the warm-up (step events), median of ${reps} run${reps > 1 ? 's' : ''} per worker count and mode${reps > 1 ? ' (min–max), counts alternating in order' : ''}; which mode runs first alternates. The ratio is to 1 worker on the same dispatch mode. Worker counts: BENCH_WORKERS=${counts.join(',')} on ${os.cpus().length} cores. "Max cores per worker" = the largest CPU s / wall s of any worker process over the measured steps (/proc): ≤ ~1 shows the one-thread limit held.`,
    '',
    `Produced by \`${command}\`:`,
    '',
    '| dispatch | workers | compute path | backend | tasks/s | ratio to 1 worker | max cores per worker | coordinator cores | target |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.dispatch} | ${r.n} | ${r.path} | ${r.backend} | ${fmt(r.tasksPerSec)}${range(r.samples)} | **${fmt(r.ratio, 3)}** | ${fmt(r.maxCoresPerWorker, 2)} | ${fmt(r.coordinatorCores, 2)} | ${verdict(r)} |`),
    '',
    'On a bigger machine: `BENCH_WORKERS=1,2,4,8 npm run bench -- scaling` (the meta-batch is 2 × the largest count, so every worker gets shards).',
  ];
  const notes = targets.map((t) => (t.met ? `Target met in this run: ${t.what} = ${t.value}.` : `Missed in this run: ${t.what} = ${t.value} (target ${t.target}).`));
  return { figures, table: lines.join('\n'), notes, targets, config: { counts, reps, dispatch: DISPATCH, env: ONE_THREAD_ENV, spec, warmup } };
}

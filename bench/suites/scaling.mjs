/**
 * scaling: throughput (tasks/s) of the same spec with 1, 2, … worker processes (coordinator CLI +
 * worker CLIs on a real nats-server), as a ratio to one worker. Worker counts come from
 * BENCH_WORKERS (default "1,2": this machine has 2 cores); on a bigger machine:
 *   BENCH_WORKERS=1,2,4,8 npm run bench -- scaling
 */
import os from 'node:os';
import { startCluster, stopCluster, timedRun } from '../lib/cluster.mjs';
import { conv4Spec, sinusoidSpec } from '../lib/specs.mjs';
import { fmt, median } from '../lib/stats.mjs';
import { distributedFigures } from './transport.mjs';

export const title = 'scaling — throughput with 1…N worker processes';
export const timeoutMs = 1_500_000;

function workerCounts() {
  const raw = process.env.BENCH_WORKERS ?? '1,2';
  const counts = raw.split(',').map((s) => Number(s.trim()));
  if (!counts.length || counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_WORKERS must be a comma-separated list of worker counts >= 1, got ${raw}`);
  return [...new Set(counts)].sort((a, b) => a - b);
}

export async function run({ quick, log }) {
  const counts = workerCounts();
  const maxN = Math.max(...counts);
  const reps = quick ? 1 : 2;
  // Enough shards for the largest worker count: 2 shards per worker (Conv4: 2 tasks per shard).
  const plans = [
    { key: 'conv4', label: 'Conv4 5w1s MAML 2nd order', spec: conv4Spec(quick ? 3 : 6, { metaBatch: 4 * maxN, shardSize: 2 }), warmup: 1, target: 1.7 },
    { key: 'sinusoid', label: 'sinusoid MAML', spec: sinusoidSpec(quick ? 15 : 40), warmup: quick ? 3 : 5, target: null },
  ];
  const rows = [];
  for (const p of plans) {
    const tasksPerStep = p.spec.outer.metaBatch;
    const byN = new Map(counts.map((n) => [n, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const n of rep % 2 === 0 ? counts : [...counts].reverse()) {
        const cluster = await startCluster({ workers: n, log });
        try {
          const r = await timedRun(cluster, p.spec, { timeoutMs: 600_000 });
          const f = distributedFigures(r, p.spec.outer.steps, p.warmup);
          byN.get(n).push(f.stepsPerSec * tasksPerStep);
          log(`${p.key} ${n} worker(s): ${fmt(f.stepsPerSec * tasksPerStep)} tasks/s`);
        } finally {
          await stopCluster(cluster);
        }
      }
    }
    const base = median(byN.get(counts[0]));
    for (const n of counts) {
      const v = median(byN.get(n));
      rows.push({ key: p.key, label: p.label, n, tasksPerSec: v, samples: byN.get(n), ratio: v / base, target: p.target, tasksPerStep, shards: Math.ceil(tasksPerStep / p.spec.outer.shardSize) });
    }
  }
  const figures = rows.flatMap((r) => [
    { id: `${r.key}_tasks_per_sec_w${r.n}`, unit: 'tasks/s', value: r.tasksPerSec, samples: r.samples, workers: r.n },
    { id: `${r.key}_ratio_w${r.n}`, unit: `ratio (throughput / ${counts[0]} worker${counts[0] > 1 ? 's' : ''})`, value: r.ratio, workers: r.n },
  ]);
  const lines = [
    `Tasks/s over the steps after the warm-up (step events timed by a client), median of ${reps} runs per worker count, each run on a fresh nats-server + coordinator + N worker processes. Worker counts: BENCH_WORKERS=${counts.join(',')} on ${os.cpus().length} cores.`,
    '',
    '| spec | tasks/step (shards) | workers | tasks/s | ratio to 1 worker | target |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.label} | ${r.tasksPerStep} (${r.shards}) | ${r.n} | ${fmt(r.tasksPerSec)} | **${fmt(r.ratio, 3)}** | ${r.target && r.n === 2 ? `≥ ${r.target}: ${r.ratio >= r.target ? 'met' : '**missed**'}` : '—'} |`),
    '',
    'On a bigger machine: `BENCH_WORKERS=1,2,4,8 npm run bench -- scaling` (the Conv4 meta-batch is 4 × the largest count, so every worker gets shards).',
  ];
  const targets = rows.filter((r) => r.target && r.n === 2).map((r) => ({ what: `${r.key}: 2 workers / 1 worker`, target: `>= ${r.target}`, value: Number(r.ratio.toFixed(3)), met: r.ratio >= r.target }));
  return { figures, table: lines.join('\n'), notes: [], targets, config: { counts, reps, plans: plans.map((p) => ({ key: p.key, spec: p.spec, warmup: p.warmup })) } };
}

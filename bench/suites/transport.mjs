/**
 * transport: meta-steps/s of a distributed run (real nats-server, the coordinator CLI and one worker
 * CLI process) divided by the same spec run in one process without any transport (computeShard +
 * the outer optimizer), for sinusoid and Conv4 5w1s; plus a per-step time breakdown.
 */
import { startCluster, stopCluster, timedRun } from '../lib/cluster.mjs';
import { runInProcess } from '../lib/inproc.mjs';
import { conv4Spec, sinusoidSpec } from '../lib/specs.mjs';
import { fmt, median } from '../lib/stats.mjs';

export const title = 'transport — distributed vs in-process meta-steps/s, per-step breakdown';
export const timeoutMs = 1_500_000;

const BUDGET_MS = 26;
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

export function plans(quick) {
  return quick
    ? [
        { key: 'sinusoid', label: 'sinusoid MAML (MLP 1-40-40-1, 25 tasks/step in 5 shards)', spec: sinusoidSpec(15), warmup: 3, target: 0.95 },
        { key: 'conv4', label: 'Conv4 5w1s MAML 2nd order (4 tasks/step in 2 shards)', spec: conv4Spec(3), warmup: 1, target: 0.98 },
      ]
    : [
        { key: 'sinusoid', label: 'sinusoid MAML (MLP 1-40-40-1, 25 tasks/step in 5 shards)', spec: sinusoidSpec(60), warmup: 10, target: 0.95 },
        { key: 'conv4', label: 'Conv4 5w1s MAML 2nd order (4 tasks/step in 2 shards)', spec: conv4Spec(8), warmup: 2, target: 0.98 },
      ];
}

/** Steps/s of a distributed run over steps warmup+1..S, and its per-step breakdown (ms). */
export function distributedFigures(run, steps, warmup) {
  const from = run.stepAt[warmup];
  const to = run.stepAt[steps];
  const stepsPerSec = from !== null && to !== null ? ((steps - warmup) / (to - from)) * 1000 : NaN;
  const c = run.coordinator;
  const w = (name) => sum(run.workers.map((f) => f(name)));
  const per = (sec) => (sec * 1000) / steps;
  const stepCount = c('metaloop_meta_step_duration_seconds_count') || steps;
  const metaStep = (c('metaloop_meta_step_duration_seconds_sum') * 1000) / stepCount;
  const shard = per(w('metaloop_worker_shard_duration_seconds_sum'));
  const compute = per(w('metaloop_worker_backprop_duration_seconds_sum'));
  const fetch = per(w('metaloop_worker_param_fetch_duration_seconds_sum'));
  const aggregation = (c('metaloop_aggregation_duration_seconds_sum') * 1000) / stepCount;
  const optimizer = (c('metaloop_outer_update_duration_seconds_sum') * 1000) / stepCount;
  return {
    stepsPerSec,
    breakdown: {
      metaStep,
      compute,
      paramFetch: fetch,
      workerOther: shard - compute - fetch,
      aggregation,
      optimizer,
      rest: metaStep - shard - aggregation - optimizer,
    },
  };
}

export function inprocFigures(r, warmup) {
  const tail = (xs) => xs.slice(warmup);
  return {
    stepsPerSec: (tail(r.stepMs).length / sum(tail(r.stepMs))) * 1000,
    breakdown: { metaStep: median(tail(r.stepMs)), compute: median(tail(r.computeMs)), aggregation: median(tail(r.aggregateMs)), optimizer: median(tail(r.optimizerMs)) },
  };
}

export async function run({ quick, log }) {
  const reps = quick ? 1 : 2;
  const ps = plans(quick);
  const results = [];
  const cluster = await startCluster({ workers: 1, log });
  try {
    for (const p of ps) {
      const steps = p.spec.outer.steps;
      const r = { plan: p, inproc: [], dist: [], backend: null };
      // Alternate in-process and distributed runs so load drift hits both.
      for (let i = 0; i < reps; i++) {
        const ip = await runInProcess(p.spec, { timeoutMs: 600_000 });
        r.backend = ip.backend;
        r.inproc.push(inprocFigures(ip, p.warmup));
        log(`${p.key} in-process: ${fmt(r.inproc.at(-1).stepsPerSec)} steps/s (${ip.backend})`);
        const dr = await timedRun(cluster, p.spec, { timeoutMs: 600_000 });
        r.dist.push(distributedFigures(dr, steps, p.warmup));
        log(`${p.key} distributed: ${fmt(r.dist.at(-1).stepsPerSec)} steps/s (run ${dr.runId})`);
      }
      results.push(r);
    }
  } finally {
    await stopCluster(cluster);
  }
  return report(results, reps);
}

function report(results, reps) {
  const figures = [];
  const rows = [];
  const bd = [];
  const targets = [];
  for (const r of results) {
    const { key, label, target, warmup, spec } = r.plan;
    const ipRate = median(r.inproc.map((x) => x.stepsPerSec));
    const dRate = median(r.dist.map((x) => x.stepsPerSec));
    const ratio = dRate / ipRate;
    const overheadMs = 1000 / dRate - 1000 / ipRate;
    figures.push({ id: `${key}_inproc_steps_per_sec`, unit: 'meta-steps/s', value: ipRate, samples: r.inproc.map((x) => x.stepsPerSec) });
    figures.push({ id: `${key}_distributed_steps_per_sec`, unit: 'meta-steps/s', value: dRate, samples: r.dist.map((x) => x.stepsPerSec) });
    figures.push({ id: `${key}_ratio`, unit: 'ratio (distributed / in-process)', value: ratio, target });
    figures.push({ id: `${key}_overhead_per_step`, unit: 'ms per meta-step', value: overheadMs });
    figures.push({ id: `${key}_overhead_budget_share`, unit: 'fraction of a 26 ms meta-step', value: overheadMs / BUDGET_MS });
    const medB = (list, k) => median(list.map((x) => x.breakdown[k]).filter((v) => v !== undefined));
    for (const k of ['metaStep', 'compute', 'paramFetch', 'workerOther', 'aggregation', 'optimizer', 'rest']) {
      figures.push({ id: `${key}_distributed_${k}`, unit: 'ms per meta-step', value: medB(r.dist, k) });
    }
    for (const k of ['metaStep', 'compute', 'aggregation', 'optimizer']) figures.push({ id: `${key}_inproc_${k}`, unit: 'ms per meta-step', value: medB(r.inproc, k) });
    rows.push(
      `| ${label} | ${spec.outer.steps} (−${warmup} warm-up) | ${r.backend} | ${fmt(ipRate)} | ${fmt(dRate)} | **${fmt(ratio, 3)}** (≥ ${target}) | ${fmt(overheadMs)} ms = ${fmt((overheadMs / BUDGET_MS) * 100, 2)} % of 26 ms | ${ratio >= target ? 'met' : '**missed**'} |`,
    );
    targets.push({ what: `transport ratio ${key}`, target: `>= ${target}`, value: Number(ratio.toFixed(4)), met: ratio >= target });
    const d = (k) => fmt(medB(r.dist, k));
    const i = (k) => fmt(medB(r.inproc, k));
    bd.push(
      `| ${key} | distributed | ${d('metaStep')} | ${d('compute')} | ${d('paramFetch')} | ${d('workerOther')} | ${d('aggregation')} | ${d('optimizer')} | ${d('rest')} |`,
      `| ${key} | in-process | ${i('metaStep')} | ${i('compute')} | — | — | ${i('aggregation')} | ${i('optimizer')} | — |`,
    );
  }
  const table = [
    `Meta-steps/s over the steps after the warm-up: distributed = step events timed by a client (real nats-server on loopback, \`coordinator/dist/cli.js coordinator\`, one \`worker/dist/cli.js\` process); in-process = \`bench/lib/inproc-run.mjs\` (the worker's \`computeShard\` per shard, float64 sum in shard order, the coordinator's optimizer; no transport, no codec). Median of ${reps} alternating pairs of runs. Overhead = 1/distributed − 1/in-process, per meta-step.`,
    '',
    '| spec | steps | backend | in-process steps/s | distributed steps/s | ratio (target) | overhead per step | target |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Per-step breakdown, ms per meta-step (distributed: from the coordinator\'s and the worker\'s /metrics over the whole run, median of runs; "worker other" = shard time − compute − parameter fetch: shard decode, result encode + publish, ack; "rest" = meta-step − shard time − aggregation − optimizer: work dispatch and queueing, result delivery, parameter publish (putParams), run-record writes).',
    '',
    '| spec | mode | meta-step | compute | param fetch | worker other (result publish …) | aggregation | optimizer | rest (dispatch, putParams, delivery) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...bd,
  ].join('\n');
  return { figures, table, notes: [], targets, config: { plans: results.map((r) => ({ key: r.plan.key, spec: r.plan.spec, warmup: r.plan.warmup })), reps } };
}

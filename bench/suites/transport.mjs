/**
 * transport: meta-steps/s of `metaloop local` distributed (nats-server on loopback, the worker
 * processes it starts) against the same spec `--embedded` (in-process transport, in-process
 * workers), for sinusoid (fused MLP path) and Conv4 5w1s (tfjs path), with 1, 2 and 4 workers;
 * the bare core-NATS request/reply round trip to another process measured in the same run, and
 * the overhead per meta-step as a multiple of it. Both arms run through runLocal (what `metaloop
 * local` runs) in a fresh child process and are timed by their step events, same warm-up, same
 * statistic; arms alternate so load drift hits both.
 */
import { backendsOf, coresBusy, localRun, roundTrips, startFloor, stepRate, stopFloor } from '../lib/local.mjs';
import { conv4Spec, sinusoidSpec } from '../lib/specs.mjs';
import { fmt, median, summary } from '../lib/stats.mjs';

export const title = 'transport — distributed vs in-process meta-steps/s, overhead per step against the bare NATS round trip';
export const timeoutMs = 1_200_000;

const OVERHEAD_RTTS = 3;

export function plans(quick) {
  return [
    { key: 'sinusoid', label: 'sinusoid MAML (MLP 1-40-40-1, 25 tasks/step in 5 shards)', spec: sinusoidSpec(quick ? 60 : 100), warmup: quick ? 10 : 20, reps: 1, target: 0.85 },
    { key: 'conv4', label: 'Conv4 5w1s MAML 2nd order (4 tasks/step in 4 shards)', spec: conv4Spec(3, { metaBatch: 4, shardSize: 1 }), warmup: 1, reps: 1, target: 0.98 },
  ];
}

const workerCounts = (quick) => (quick ? [1, 2] : [1, 2, 4]);

export async function run({ quick, log, signal }) {
  const counts = workerCounts(quick);
  const floor = await startFloor(log);
  const rtts = [];
  const cells = [];
  let pairs = 0;
  try {
    rtts.push(...(await roundTrips(floor, 200)));
    for (const p of plans(quick)) {
      for (const n of counts) {
        const cell = { plan: p, n, inproc: [], dist: [] };
        for (let rep = 0; rep < p.reps; rep++) {
          // Alternate which arm goes first (from one run pair to the next) so load drift hits both.
          const order = pairs++ % 2 === 0 ? [true, false] : [false, true];
          for (const embedded of order) {
            if (signal.aborted) throw new Error('aborted');
            const r = await localRun({ spec: p.spec, workers: n, embedded, natsUrl: embedded ? undefined : floor.url, cpuFrom: p.warmup });
            const arm = { rate: stepRate(r, p.warmup), backend: backendsOf(r), path: r.computePath, cores: coresBusy(r), runId: r.record.runId };
            (embedded ? cell.inproc : cell.dist).push(arm);
            log(`${p.key} N=${n} ${embedded ? 'in-process' : 'distributed'}: ${fmt(arm.rate)} steps/s (${arm.path}, ${arm.backend})`);
            if (!embedded) rtts.push(...(await roundTrips(floor, 50)));
          }
        }
        cells.push(cell);
      }
    }
  } finally {
    await stopFloor(floor);
  }
  return report(cells, summary(rtts), counts);
}

function report(cells, rtt, counts) {
  const figures = [{ id: 'nats_request_reply_rtt', unit: 'ms', value: rtt.median, ...rtt }];
  const targets = [];
  const rows = [];
  const cpuRows = [];
  for (const c of cells) {
    const { key, label, target, warmup, spec } = c.plan;
    const ip = median(c.inproc.map((x) => x.rate));
    const d = median(c.dist.map((x) => x.rate));
    const ratio = d / ip;
    const overheadMs = 1000 / d - 1000 / ip;
    const multiple = overheadMs / rtt.median;
    const id = `${key}_w${c.n}`;
    figures.push(
      { id: `${id}_inproc_steps_per_sec`, unit: 'meta-steps/s', value: ip, samples: c.inproc.map((x) => x.rate), backend: c.inproc[0].backend, path: c.inproc[0].path },
      { id: `${id}_distributed_steps_per_sec`, unit: 'meta-steps/s', value: d, samples: c.dist.map((x) => x.rate), backend: c.dist[0].backend, path: c.dist[0].path },
      { id: `${id}_ratio`, unit: 'ratio (distributed / in-process)', value: ratio, target },
      { id: `${id}_overhead_per_step`, unit: 'ms per meta-step', value: overheadMs },
      { id: `${id}_overhead_rtts`, unit: 'bare NATS round trips per meta-step', value: multiple, target: OVERHEAD_RTTS },
    );
    const ratioMet = ratio >= target;
    const overheadMet = multiple <= OVERHEAD_RTTS;
    targets.push(
      { what: `transport ${key}, ${c.n} worker(s): distributed / in-process`, target: `>= ${target}`, value: Number(ratio.toFixed(4)), met: ratioMet },
      { what: `transport ${key}, ${c.n} worker(s): overhead per meta-step / bare round trip`, target: `<= ${OVERHEAD_RTTS}`, value: Number(multiple.toFixed(2)), met: overheadMet },
    );
    const range = (xs) => (xs.length > 1 ? ` (${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)})` : '');
    rows.push(
      `| ${label} | ${c.n} | ${c.inproc[0].path} | ${c.inproc[0].backend} | ${c.dist[0].backend} | ${spec.outer.steps} (−${warmup}) | ${fmt(ip)}${range(c.inproc.map((x) => x.rate))} | ${fmt(d)}${range(c.dist.map((x) => x.rate))} | **${fmt(ratio, 3)}** (≥ ${target}): ${ratioMet ? 'met' : '**missed**'} | ${fmt(overheadMs)} ms | **${fmt(multiple)}×** (≤ ${OVERHEAD_RTTS}×): ${overheadMet ? 'met' : '**missed**'} |`,
    );
    const cores = (arms, pick) => fmt(median(arms.map((a) => pick(a.cores)).filter(Number.isFinite)), 2);
    cpuRows.push(
      `| ${key} | ${c.n} | ${cores(c.inproc, (x) => x.self)} | ${cores(c.dist, (x) => x.self)} | ${cores(c.dist, (x) => (x.workers.length ? x.workers.reduce((a, b) => a + b, 0) / x.workers.length : NaN))} | ${cores(c.dist, (x) => x.workers.reduce((a, b) => a + b, 0))} |`,
    );
  }
  const missed = targets.filter((t) => !t.met);
  const table = [
    `Both arms run \`runLocal\` (what \`metaloop local\` runs) in a fresh child process: **in-process** = \`--embedded\` (in-process transport, the workers in the coordinator's process); **distributed** = the coordinator on a real nats-server on loopback and N \`metaloop-worker\` processes started by it. Meta-steps/s over the steps after the warm-up, timed by the arrival of the coordinator's step events in the coordinator's process (same warm-up, same statistic in both arms); median of ${cells.map((c) => c.plan).filter((p, i, a) => a.findIndex((q) => q.key === p.key) === i).map((p) => `${p.reps} run${p.reps > 1 ? 's' : ''} per arm for ${p.key}`).join(', ')} (min–max where more than one); which arm runs first alternates from one pair of runs to the next. Compute path and backend as the worker reports them (heartbeats). Overhead = 1/distributed − 1/in-process per meta-step; the floor beside it is the bare core-NATS request/reply round trip (16 bytes, plain nats.js client to an echo process through the same nats-server) measured in this run: **${fmt(rtt.median)} ms** median (${fmt(rtt.min, 2)}–${fmt(rtt.max, 2)}, ${rtt.n} round trips interleaved with the runs).`,
    '',
    '| spec | workers | compute path | in-process: backend | distributed: backend | steps (warm-up) | in-process steps/s | distributed steps/s | ratio (target) | overhead per step | overhead / bare round trip (target) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Cores kept busy over the measured steps (CPU seconds / wall seconds from /proc, median of runs): the coordinator\'s process (in-process: coordinator and workers together) and the worker processes.',
    '',
    '| spec | workers | in-process: coordinator + workers | distributed: coordinator | distributed: per worker | distributed: all workers |',
    '|---|---|---|---|---|---|',
    ...cpuRows,
  ].join('\n');
  const notes = [
    missed.length
      ? `Missed in this run (${missed.length} of ${targets.length}): ${missed.map((t) => `${t.what} = ${t.value} (target ${t.target})`).join('; ')}.`
      : `Every target met in this run (${targets.length}).`,
  ];
  return { figures, table, notes, targets, config: { workerCounts: counts, plans: cells.filter((c) => c.n === counts[0]).map((c) => ({ key: c.plan.key, spec: c.plan.spec, warmup: c.plan.warmup, reps: c.plan.reps })) } };
}

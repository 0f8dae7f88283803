/**
 * transport: meta-steps/s of `metaloop local` distributed (nats-server on loopback, the worker
 * processes it starts), once per dispatch mode (`queue`: JetStream WorkQueue; `direct`: shards
 * assigned over core NATS, each selected explicitly, never the product's default), against the
 * same spec `--embedded` (in-process transport, in-process workers), for sinusoid (fused MLP
 * path) and Conv4 5w1s (tfjs path), with 1, 2 and 4 workers; the bare core-NATS request/reply
 * round trip to another process measured in the same run, and each distributed arm's overhead
 * per meta-step as a multiple of it. Every arm runs through runLocal (what `metaloop local` runs)
 * in a fresh child process and is timed by its step events, same warm-up, same statistic; the
 * arms' order rotates so load drift hits all of them. Verdicts: bench/lib/verdict.mjs.
 * Beside meta-steps/s, what distribution costs on any machine: CPU-seconds per meta-step summed
 * over every process of the arm (coordinator, workers, nats-server; /proc) and messages per
 * meta-step through the server (its /varz counters). And the async row: meta-steps/s of 2 workers,
 * one of them slow, synchronous (staleness 0) against asynchronous (staleness 2).
 */
import { backendsOf, coresBusy, cpuPerStep, localRun, roundTrips, startFloor, stepRate, stepTimes, stopFloor } from '../lib/local.mjs';
import { conv4Spec, sinusoidSpec } from '../lib/specs.mjs';
import { fmt, median, summary } from '../lib/stats.mjs';
import { meanDifference, overheadVerdict, ratioInterval, ratioVerdict, verdictCell } from '../lib/verdict.mjs';

export const title = 'transport — distributed (queue and direct dispatch) vs in-process: meta-steps/s, overhead per step against the bare NATS round trip, CPU-seconds and messages per meta-step; async vs sync with a slow worker';
export const timeoutMs = 1_500_000;

const OVERHEAD_RTTS = 3;

/**
 * The arms of every cell, each with its dispatch mode set explicitly. The in-process arm is the
 * reference: direct dispatch on the in-process transport (no broker; the mode that ships).
 */
export const ARMS = [
  { key: 'inproc', label: 'in-process', embedded: true, dispatch: 'direct' },
  { key: 'queue', label: 'distributed, queue', embedded: false, dispatch: 'queue' },
  { key: 'direct', label: 'distributed, direct', embedded: false, dispatch: 'direct' },
];

export function plans(quick) {
  return [
    { key: 'sinusoid', label: 'sinusoid MAML (MLP 1-40-40-1, 25 tasks/step in 5 shards)', spec: sinusoidSpec(quick ? 30 : 100), warmup: quick ? 5 : 20, reps: quick ? 1 : 3, target: 0.85 },
    quick
      ? { key: 'conv4', label: 'Conv4 5w1s MAML 2nd order (2 tasks/step in 2 shards)', spec: conv4Spec(2, { metaBatch: 2, shardSize: 1 }), warmup: 1, reps: 1, target: 0.98 }
      : { key: 'conv4', label: 'Conv4 5w1s MAML 2nd order (4 tasks/step in 4 shards)', spec: conv4Spec(6, { metaBatch: 4, shardSize: 1 }), warmup: 1, reps: 2, target: 0.98 },
  ];
}

const workerCounts = (quick) => (quick ? [1, 2] : [1, 2, 4]);

/** CPU per meta-step, distributed / in-process, at most this (direct dispatch). */
const CPU_TARGET = { sinusoid: 1.25, conv4: 1.05 };
/** Messages per meta-step through the server, at most 2 × workers + 1 (direct dispatch). */
const msgTarget = (workers) => 2 * workers + 1;

/** The async row: sinusoid on 2 workers, worker 1 holding every shard `slowMs` (a straggler). */
export function asyncPlan(quick) {
  return { spec: sinusoidSpec(quick ? 40 : 120), warmup: quick ? 5 : 10, reps: quick ? 1 : 2, workers: 2, slowMs: 15, staleness: [0, 2] };
}

export async function run({ quick, log, signal, command }) {
  const counts = workerCounts(quick);
  const floor = await startFloor(log);
  const rtts = [];
  const cells = [];
  let asyncRuns = null;
  let rotation = 0;
  try {
    rtts.push(...(await roundTrips(floor, 200)));
    for (const p of plans(quick)) {
      for (const n of counts) {
        const cell = { plan: p, n, arms: Object.fromEntries(ARMS.map((a) => [a.key, { arm: a, runs: [] }])) };
        for (let rep = 0; rep < p.reps; rep++) {
          // Rotate which arm goes first (from one group of runs to the next) so load drift hits all.
          const r0 = rotation++ % ARMS.length;
          for (const arm of [...ARMS.slice(r0), ...ARMS.slice(0, r0)]) {
            if (signal.aborted) throw new Error('aborted');
            const nats = arm.embedded ? {} : { natsUrl: floor.url, natsPid: floor.pid, natsMonitor: floor.monitorUrl };
            const r = await localRun({ spec: p.spec, workers: n, embedded: arm.embedded, dispatch: arm.dispatch, ...nats, cpuFrom: p.warmup });
            const x = { rate: stepRate(r, p.warmup), stepMs: stepTimes(r, p.warmup), backend: backendsOf(r), path: r.computePath, cores: coresBusy(r), cpu: cpuPerStep(r, p.warmup), runId: r.record.runId, dispatch: r.dispatch };
            cell.arms[arm.key].runs.push(x);
            log(`${p.key} N=${n} ${arm.label} (dispatch ${x.dispatch}): ${fmt(x.rate)} steps/s (${x.path}, ${x.backend})`);
            if (!arm.embedded) rtts.push(...(await roundTrips(floor, 50)));
          }
        }
        cells.push(cell);
      }
    }
    asyncRuns = await runAsyncRow(asyncPlan(quick), floor, log, signal);
  } finally {
    await stopFloor(floor);
  }
  return report(cells, summary(rtts), counts, command, asyncRuns);
}

/** Sync and async runs of the async row, alternating: { plan, runs: { [staleness]: [{ rate, stalenessMean, stalenessMax, cpu }] } }. */
async function runAsyncRow(plan, floor, log, signal) {
  const out = Object.fromEntries(plan.staleness.map((s) => [s, []]));
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const s of rep % 2 === 0 ? plan.staleness : [...plan.staleness].reverse()) {
      if (signal.aborted) throw new Error('aborted');
      const spec = { ...plan.spec, workers: { ...plan.spec.workers, staleness: s } };
      const r = await localRun({ spec, workers: plan.workers, embedded: false, dispatch: 'direct', natsUrl: floor.url, natsPid: floor.pid, natsMonitor: floor.monitorUrl, cpuFrom: plan.warmup, slowWorkerMs: plan.slowMs });
      const x = { rate: stepRate(r, plan.warmup), stalenessMean: r.staleness?.mean ?? 0, stalenessMax: r.staleness?.max ?? 0, cpu: cpuPerStep(r, plan.warmup) };
      out[s].push(x);
      log(`async row: staleness ${s}, worker 1 ${plan.slowMs} ms slower per shard: ${fmt(x.rate)} steps/s (staleness mean ${fmt(x.stalenessMean, 2)}, max ${x.stalenessMax})`);
    }
  }
  return { plan, runs: out };
}

/** One arm's runs pooled: per-step times of every run, rate = steps / their total time. */
function pooled(a) {
  const stepMs = a.runs.flatMap((x) => x.stepMs);
  const meanMs = stepMs.reduce((s, x) => s + x, 0) / stepMs.length;
  return { ...a, stepMs, meanMs, rate: 1000 / meanMs, rates: a.runs.map((x) => x.rate), first: a.runs[0] };
}

/** Overhead of a distributed arm over the in-process one, with its noise and verdicts. */
function compare(ip, d, rttMs, target) {
  const m = meanDifference(ip.stepMs, d.stepMs);
  const ratio = ratioInterval(m.meanA, m.diff, m.half);
  return {
    overheadMs: m.diff,
    noiseMs: m.half,
    ratio,
    rtts: m.diff / rttMs,
    noiseRtts: m.half / rttMs,
    overhead: overheadVerdict(m.diff, m.half, OVERHEAD_RTTS * rttMs),
    ratioVerdict: ratioVerdict(ratio, target),
  };
}

/** Mean of finite values (NaN when none). */
const meanOf = (xs) => {
  const f = xs.filter(Number.isFinite);
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
};

/**
 * CPU per meta-step of a distributed arm over the in-process one: the ratio of the means, with the
 * range of the per-repetition ratios (run k of each arm). Verdict against an upper bound: met when
 * every repetition's ratio is within it, missed when none is, inconclusive otherwise.
 */
function cpuRatio(ip, d, target) {
  const value = meanOf(d.map((r) => r.cpu.total)) / meanOf(ip.map((r) => r.cpu.total));
  const each = d.map((r, k) => r.cpu.total / (ip[k] ?? ip[0]).cpu.total).filter(Number.isFinite);
  const lo = Math.min(...each);
  const hi = Math.max(...each);
  const verdict = !Number.isFinite(value) ? 'inconclusive' : hi <= target ? 'met' : lo > target ? 'missed' : 'inconclusive';
  return { value, lo, hi, verdict };
}

/** The CPU and messages table: its rows, figures and targets for one cell. */
function costRows(c, figures, targets) {
  const { key } = c.plan;
  const id = `${key}_w${c.n}`;
  const ms = (x) => (Number.isFinite(x) ? fmt(x * 1000, 2) : '—');
  const ip = c.arms.inproc.runs;
  const rows = [];
  for (const arm of ARMS) {
    const runs = c.arms[arm.key].runs;
    const part = (pick) => meanOf(runs.map((r) => pick(r.cpu)));
    const total = part((x) => x.total);
    const msgs = arm.embedded ? NaN : meanOf(runs.map((r) => r.cpu.msgs?.in ?? NaN));
    figures.push(
      { id: `${id}_${arm.key}_cpu_per_step`, unit: 'CPU-s per meta-step (all processes)', value: total, samples: runs.map((r) => r.cpu.total), coordinator: part((x) => x.coordinator), workers: part((x) => x.workers), nats: part((x) => x.nats) },
      ...(arm.embedded ? [] : [{ id: `${id}_${arm.key}_messages_per_step`, unit: 'messages per meta-step (server in_msgs)', value: msgs, out: meanOf(runs.map((r) => r.cpu.msgs?.out ?? NaN)) }]),
    );
    let ratioCell = '—';
    let msgCell = arm.embedded ? '— (no broker)' : fmt(msgs, 2);
    if (!arm.embedded) {
      const target = CPU_TARGET[key] ?? 1.25;
      const r = cpuRatio(ip, runs, target);
      const graded = arm.dispatch === 'direct';
      figures.push({ id: `${id}_${arm.key}_cpu_ratio`, unit: 'ratio (distributed / in-process CPU per meta-step)', value: r.value, low: r.lo, high: r.hi, target, ...(graded ? { verdict: r.verdict } : {}) });
      const span = runs.length > 1 ? ` (${fmt(r.lo, 3)}–${fmt(r.hi, 3)})` : '';
      ratioCell = graded ? `**${fmt(r.value, 3)}**${span} (≤ ${target}): ${verdictCell(r.verdict)}` : `${fmt(r.value, 3)}${span} (not graded: per shard by design)`;
      if (graded) {
        const mt = msgTarget(c.n);
        const mv = msgs <= mt ? 'met' : Number.isFinite(msgs) ? 'missed' : 'inconclusive';
        msgCell = `**${fmt(msgs, 2)}** (≤ ${mt}): ${verdictCell(mv)}`;
        targets.push(
          { what: `transport ${key}, ${c.n} worker(s), direct dispatch: CPU per meta-step, distributed / in-process`, target: `<= ${target}`, value: Number(r.value.toFixed(4)), interval95: [r.lo, r.hi].map((v) => Number(v.toFixed(4))), verdict: r.verdict, met: r.verdict === 'met' },
          { what: `transport ${key}, ${c.n} worker(s), direct dispatch: messages per meta-step`, target: `<= ${mt}`, value: Number(msgs.toFixed(2)), verdict: mv, met: mv === 'met' },
        );
      }
    }
    rows.push(`| ${key} | ${c.n} | ${arm.label} (${arm.dispatch}) | ${ms(part((x) => x.coordinator))} | ${arm.embedded ? '—' : ms(part((x) => x.workers))} | ${arm.embedded ? '—' : ms(part((x) => x.nats))} | ${ms(total)} | ${ratioCell} | ${msgCell} |`);
  }
  return rows;
}

/** The async row's table: sync vs async meta-steps/s with one slow worker. */
function asyncTable(a, figures) {
  if (!a) return [];
  const { plan, runs } = a;
  const rate = (s) => meanOf(runs[s].map((x) => x.rate));
  const [sync, asy] = plan.staleness;
  const rows = plan.staleness.map((s) => {
    const xs = runs[s];
    figures.push({ id: `async_staleness${s}_steps_per_sec`, unit: 'meta-steps/s', value: rate(s), samples: xs.map((x) => x.rate), stalenessMean: meanOf(xs.map((x) => x.stalenessMean)), cpuPerStep: meanOf(xs.map((x) => x.cpu.total)) });
    return `| ${s === 0 ? 'synchronous' : 'asynchronous'} (workers.staleness ${s}) | ${fmt(rate(s))}${xs.length > 1 ? ` (${xs.map((x) => fmt(x.rate)).join(', ')})` : ''} | ${fmt(meanOf(xs.map((x) => x.stalenessMean)), 2)} / ${Math.max(...xs.map((x) => x.stalenessMax))} | ${fmt(meanOf(xs.map((x) => x.cpu.total)) * 1000, 2)} |`;
  });
  figures.push({ id: 'async_over_sync', unit: 'ratio (async / sync meta-steps/s, one slow worker)', value: rate(asy) / rate(sync) });
  return [
    '',
    `Asynchronous mode with a straggler: sinusoid (${plan.spec.outer.metaBatch} tasks/step in shards of ${plan.spec.outer.shardSize}) on ${plan.workers} worker processes, direct dispatch, worker 1 holding every shard ${plan.slowMs} ms longer; ${plan.spec.outer.steps} steps (−${plan.warmup}), ${plan.reps} run${plan.reps > 1 ? 's' : ''} each, alternating. Async issues up to \`staleness\` more steps on the current θ while a step waits, so the fast worker keeps computing; θ is not bitwise that of the synchronous run. Async / sync: **${fmt(rate(asy) / rate(sync), 2)}×**.`,
    '',
    '| mode | meta-steps/s | staleness of applied results (mean / max) | CPU-ms per meta-step (all processes) |',
    '|---|---|---|---|',
    ...rows,
  ];
}

function report(cells, rtt, counts, command, asyncRuns) {
  const figures = [{ id: 'nats_request_reply_rtt', unit: 'ms', value: rtt.median, ...rtt }];
  const targets = [];
  const rows = [];
  const cpuRows = [];
  const costs = [];
  const range = (xs) => (xs.length > 1 ? ` (${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)})` : '');
  const pm = (x, h) => `${fmt(x)} ± ${Number.isFinite(h) ? fmt(h) : '∞'}`;
  for (const c of cells) {
    const { key, label, target, warmup, spec } = c.plan;
    const id = `${key}_w${c.n}`;
    const ip = pooled(c.arms.inproc);
    const steps = `${spec.outer.steps} (−${warmup})`;
    figures.push({ id: `${id}_inproc_steps_per_sec`, unit: 'meta-steps/s', value: ip.rate, samples: ip.rates, dispatch: ip.arm.dispatch, backend: ip.first.backend, path: ip.first.path, stepMs: summary(ip.stepMs) });
    rows.push(`| ${label} | ${c.n} | ${ip.arm.label} (${ip.arm.dispatch}) | ${ip.first.path} | ${ip.first.backend} | ${steps} | ${fmt(ip.rate)}${range(ip.rates)} | — | — | — |`);
    for (const arm of ARMS.filter((a) => !a.embedded)) {
      const d = pooled(c.arms[arm.key]);
      const x = compare(ip, d, rtt.median, target);
      const aid = `${id}_${arm.key}`;
      figures.push(
        { id: `${aid}_steps_per_sec`, unit: 'meta-steps/s', value: d.rate, samples: d.rates, dispatch: arm.dispatch, backend: d.first.backend, path: d.first.path, stepMs: summary(d.stepMs) },
        { id: `${aid}_ratio`, unit: 'ratio (distributed / in-process)', value: x.ratio.value, low95: x.ratio.lo, high95: x.ratio.hi, target, verdict: x.ratioVerdict },
        { id: `${aid}_overhead_per_step`, unit: 'ms per meta-step', value: x.overheadMs, noise95: x.noiseMs },
        { id: `${aid}_overhead_rtts`, unit: 'bare NATS round trips per meta-step', value: x.rtts, noise95: x.noiseRtts, target: OVERHEAD_RTTS, verdict: x.overhead },
      );
      targets.push(
        { what: `transport ${key}, ${c.n} worker(s), ${arm.dispatch} dispatch: distributed / in-process`, target: `>= ${target}`, value: Number(x.ratio.value.toFixed(4)), interval95: [x.ratio.lo, x.ratio.hi].map((v) => Number(v.toFixed(4))), verdict: x.ratioVerdict, met: x.ratioVerdict === 'met' },
        { what: `transport ${key}, ${c.n} worker(s), ${arm.dispatch} dispatch: overhead per meta-step / bare round trip`, target: `<= ${OVERHEAD_RTTS}`, value: Number(x.rtts.toFixed(2)), noise95: Number(x.noiseRtts.toFixed(2)), verdict: x.overhead, met: x.overhead === 'met' },
      );
      const ratioCell = `**${fmt(x.ratio.value, 3)}** (${fmt(x.ratio.lo, 3)}–${Number.isFinite(x.ratio.hi) ? fmt(x.ratio.hi, 3) : '∞'}) (≥ ${target}): ${verdictCell(x.ratioVerdict)}`;
      rows.push(
        `| ${label} | ${c.n} | ${arm.label} (${arm.dispatch}) | ${d.first.path} | ${d.first.backend} | ${steps} | ${fmt(d.rate)}${range(d.rates)} | ${ratioCell} | ${pm(x.overheadMs, x.noiseMs)} ms | **${pm(x.rtts, x.noiseRtts)}×** (≤ ${OVERHEAD_RTTS}×): ${verdictCell(x.overhead)} |`,
      );
    }
    const cores = (arm, pick) => fmt(median(c.arms[arm.key].runs.map((r) => pick(r.cores)).filter(Number.isFinite)), 2);
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    costs.push(...costRows(c, figures, targets));
    for (const arm of ARMS) {
      cpuRows.push(
        `| ${key} | ${c.n} | ${arm.label} (${arm.dispatch}) | ${cores(arm, (x) => x.self)} | ${arm.embedded ? '—' : cores(arm, (x) => (x.workers.length ? sum(x.workers) / x.workers.length : NaN))} | ${arm.embedded ? '—' : cores(arm, (x) => sum(x.workers))} |`,
      );
    }
  }
  const missed = targets.filter((t) => t.verdict === 'missed');
  const unclear = targets.filter((t) => t.verdict === 'inconclusive');
  const repsText = cells.map((c) => c.plan).filter((p, i, a) => a.findIndex((q) => q.key === p.key) === i).map((p) => `${p.reps} run${p.reps > 1 ? 's' : ''} per arm for ${p.key}`).join(', ');
  const table = [
    `Every arm runs \`runLocal\` (what \`metaloop local\` runs) in a fresh child process, its dispatch mode set explicitly: **in-process** = \`--embedded --dispatch direct\` (in-process transport, the workers in the coordinator's process, no broker); **distributed, queue** = \`--dispatch queue\` (shards through the JetStream WorkQueue) and **distributed, direct** = \`--dispatch direct\` (shards assigned over core NATS, each result one request), both with the coordinator on a real nats-server on loopback and N \`metaloop-worker\` processes started by it. Meta-steps/s = measured steps / their total time, over the steps after the warm-up, timed by the arrival of the coordinator's step events in the coordinator's process (same warm-up, same statistic in every arm); ${repsText} (per-run min–max where more than one); the arms' order rotates from one group of runs to the next. Compute path and backend as the worker reports them (heartbeats). Overhead = mean distributed − mean in-process step time (= 1/distributed − 1/in-process) ± the half-width of its 95% confidence interval (Welch, from the per-step times of both arms); the ratio's interval is the same one carried over. The floor is the bare core-NATS request/reply round trip (16 bytes, plain nats.js client to an echo process through the same nats-server) measured in this run: **${fmt(rtt.median)} ms** median (${fmt(rtt.min, 2)}–${fmt(rtt.max, 2)}, ${rtt.n} round trips interleaved with the runs).`,
    '',
    'A verdict is *inconclusive* when the interval cannot decide it. Overhead: inconclusive when the overhead is not above its noise (overhead − noise ≤ 0, so every negative overhead: the distributed arm was not measurably slower), or when the target lies inside overhead ± noise; met only when overhead + noise ≤ 3 round trips, missed only when overhead − noise > 3 round trips. Ratio: met when the low end of its interval reaches the target, missed when the high end is below it, inconclusive otherwise (bench/lib/verdict.mjs).',
    '',
    `Produced by \`${command}\`:`,
    '',
    '| spec | workers | arm (dispatch) | compute path | backend | steps (warm-up) | steps/s | distributed / in-process (95% interval) (target) | overhead per step ± noise | overhead / bare round trip (target) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Cores kept busy over the measured steps (CPU seconds / wall seconds from /proc, median of runs): the coordinator's process (in-process: coordinator and workers together) and the worker processes. Produced by \`${command}\`:`,
    '',
    '| spec | workers | arm (dispatch) | coordinator process | per worker | all workers |',
    '|---|---|---|---|---|---|',
    ...cpuRows,
    '',
    `What distribution costs, whatever the machine's cores: CPU-milliseconds per measured meta-step of each process of the arm (/proc utime + stime between the warm-up's last step event and the last one, ÷ the steps; in-process: the one process), summed over all of them, as a ratio to the in-process arm (of the means; per-repetition range; graded for direct dispatch, met when every repetition is within the target); and messages per meta-step through nats-server (its monitoring endpoint's in_msgs over the same steps: θ broadcast chunks, assignments, result requests and replies, step events, heartbeats, run-record writes and the bench's status polls). Produced by \`${command}\`:`,
    '',
    '| spec | workers | arm (dispatch) | coordinator process | worker processes | nats-server | all processes | distributed / in-process (target) | messages per meta-step (target) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...costs,
    ...asyncTable(asyncRuns, figures),
  ].join('\n');
  const inf = (v) => (Number.isFinite(v) ? v : '∞');
  const list = (ts) => ts.map((t) => `${t.what} = ${t.value}${t.noise95 !== undefined ? ` ± ${inf(t.noise95)}` : ''}${t.interval95 ? ` (${t.interval95.map(inf).join('–')})` : ''} (target ${t.target})`).join('; ');
  const notes = [
    missed.length ? `Missed in this run (${missed.length} of ${targets.length}): ${list(missed)}.` : `No target missed in this run (${targets.length} graded).`,
    ...(unclear.length ? [`Inconclusive in this run (${unclear.length} of ${targets.length}; more steps or runs narrow the interval): ${list(unclear)}.`] : []),
  ];
  return {
    figures,
    table,
    notes,
    targets,
    config: { workerCounts: counts, arms: ARMS, cpuTargets: CPU_TARGET, asyncPlan: asyncRuns?.plan, plans: cells.filter((c) => c.n === counts[0]).map((c) => ({ key: c.plan.key, spec: c.plan.spec, warmup: c.plan.warmup, reps: c.plan.reps })) },
  };
}

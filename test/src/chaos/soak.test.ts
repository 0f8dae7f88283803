/**
 * Issue 5 acceptance 6 (soak): 3 concurrent sinusoid runs share 2 worker processes (priorities
 * 1, 1, 2), ≥ 1000 meta-steps in all. Every run succeeds; the workers' live tfjs tensors
 * (metaloop_worker_tfjs_tensors) stay flat; coordinator and worker RSS after warm-up and at the
 * end go into bench/RESULTS.md between the `chaos:soak` markers (other sections untouched).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { metaloop, startNatsServer, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/coordinator';
import {
  apiClient,
  freePort,
  metricValue,
  Proc,
  ROOT,
  scrape,
  sinusoidSets,
  sleep,
  startCoordinator,
  startWorker,
  submitRun,
  waitRunEnd,
  waitWorkers,
} from '../support/cluster.js';

const RUNS = [
  { steps: 340, priority: 1 },
  { steps: 340, priority: 1 },
  { steps: 340, priority: 2 },
];
const TOTAL = RUNS.reduce((n, r) => n + r.steps, 0);
const MARK_START = '<!-- chaos:soak:start -->';
const MARK_END = '<!-- chaos:soak:end -->';

interface Sample {
  readonly atSteps: number;
  readonly tensors: number[];
  readonly workerRss: number[];
  readonly workerHeap: number[];
  readonly coordinatorRss: number;
  readonly coordinatorHeap: number;
}

const mb = (b: number) => (b / 2 ** 20).toFixed(1);

/** Replace (or append) the soak section of bench/RESULTS.md, leaving every other section alone. */
function recordResults(section: string): void {
  const path = join(ROOT, 'bench', 'RESULTS.md');
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    text = '# Benchmark results\n';
  }
  const block = `${MARK_START}\n${section.trim()}\n${MARK_END}`;
  const a = text.indexOf(MARK_START);
  const b = text.indexOf(MARK_END);
  text = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + MARK_END.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, text);
}

describe('chaos: soak — 3 concurrent runs on 2 workers', { timeout: 900_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  let coordinatorPort = 0;
  const workerPorts: number[] = [];
  let api: { client: ApiClient; close: () => Promise<void> };

  const describeProcs = () => procs.map((p) => p.tail(10)).join('\n');
  const dead = () => procs.find((p) => p.exited)?.exitReason();

  before(async () => {
    nats = await startNatsServer();
    api = await apiClient(nats.url);
    const c = await startCoordinator('coordinator', nats.url, { leaseMs: 5000, env: { METALOOP_LOG_LEVEL: 'warn' } });
    procs.push(c.proc);
    coordinatorPort = c.metricsPort;
    for (const id of ['s1', 's2']) {
      const port = await freePort();
      workerPorts.push(port);
      procs.push(startWorker(id, nats.url, { metricsPort: port, env: { METALOOP_LOG_LEVEL: 'warn' } }));
    }
  });

  after(async () => {
    await api?.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it(`trains ${TOTAL} meta-steps in 3 runs; tensors flat; RSS recorded`, async () => {
    const client = api.client;
    await waitWorkers(client, 2, 60_000, describeProcs);
    const started = Date.now();
    const ids: string[] = [];
    for (const r of RUNS) ids.push(await submitRun(client, sinusoidSets(r.steps, ['checkpoint.every=100']), r.priority));
    const samples: Sample[] = [];
    const sample = async (): Promise<Sample> => {
      const steps = (await Promise.all(ids.map((id) => client.status(id)))).reduce((n, r) => n + r.step, 0);
      const w = await Promise.all(workerPorts.map((p) => scrape(p)));
      const c = await scrape(coordinatorPort);
      return {
        atSteps: steps,
        tensors: w.map((t) => metricValue(t, 'metaloop_worker_tfjs_tensors')),
        workerRss: w.map((t) => metricValue(t, 'process_resident_memory_bytes')),
        workerHeap: w.map((t) => metricValue(t, 'nodejs_heap_size_used_bytes')),
        coordinatorRss: metricValue(c, 'process_resident_memory_bytes'),
        coordinatorHeap: metricValue(c, 'nodejs_heap_size_used_bytes'),
      };
    };
    // Sample every 2 s until every run ended.
    let records: metaloop.RunRecord[] = [];
    for (;;) {
      const gone = dead();
      if (gone) assert.fail(`${gone}\n${describeProcs()}`);
      samples.push(await sample());
      records = await Promise.all(ids.map((id) => client.status(id)));
      if (records.every((r) => r.state !== metaloop.RunState.RUN_STATE_RUNNING && r.state !== metaloop.RunState.RUN_STATE_PENDING)) break;
      assert.ok(Date.now() - started < 800_000, `soak did not finish in time\n${describeProcs()}`);
      await sleep(2000);
    }
    for (const id of ids) await waitRunEnd(client, id, 10_000, describeProcs);
    const seconds = (Date.now() - started) / 1000;
    for (const r of records) {
      assert.equal(r.state, metaloop.RunState.RUN_STATE_SUCCEEDED, `run ${r.runId}: ${r.error}`);
    }
    assert.equal(records.reduce((n, r) => n + r.step, 0), TOTAL);
    await sleep(1500);
    const end = await sample();

    // Warm-up: the first sample past 10% of the steps.
    const warm = samples.find((s) => s.atSteps >= TOTAL * 0.1) ?? samples[0]!;
    const training = samples.filter((s) => s.atSteps >= warm.atSteps);
    const third = Math.max(1, Math.floor(training.length / 3));
    const early = training.slice(0, third);
    const late = training.slice(-third);
    for (let w = 0; w < workerPorts.length; w++) {
      const earlyMax = Math.max(...early.map((s) => s.tensors[w]!));
      const lateMax = Math.max(...late.map((s) => s.tensors[w]!));
      assert.ok(lateMax <= earlyMax + 20, `worker ${w + 1}: tfjs tensors grew from ${earlyMax} to ${lateMax}`);
      assert.ok(end.tensors[w]! <= earlyMax, `worker ${w + 1}: ${end.tensors[w]} tensors left idle after the runs (training max ${earlyMax})`);
    }
    const spread = (xs: number[]) => `${Math.min(...xs)}–${Math.max(...xs)}`;
    const lines = [
      '## Soak: 3 concurrent runs on 2 workers (chaos suite)',
      '',
      `Measured by \`test/src/chaos/soak.test.ts\` on ${new Date().toISOString().slice(0, 10)} (2 shared cores, other sessions busy): sinusoid MAML`,
      `(MLP 40-40, meta-batch 10 in 2 shards), runs of ${RUNS.map((r) => r.steps).join(' + ')} = ${TOTAL} meta-steps with priorities ${RUNS.map((r) => r.priority).join(', ')},`,
      `nats-server 2.9 (JetStream on disk), coordinator and 2 worker processes (cpu backend), ${seconds.toFixed(0)} s wall time,`,
      `${(TOTAL / seconds).toFixed(1)} meta-steps/s in all. Samples every 2 s; warm-up = first sample past 10% of the steps.`,
      '',
      '| process | RSS after warm-up (MiB) | RSS at the end (MiB) | JS heap used after warm-up → end (MiB) | tfjs tensors while training (min–max) | tensors idle at the end |',
      '|---|---|---|---|---|---|',
      `| coordinator | ${mb(warm.coordinatorRss)} | ${mb(end.coordinatorRss)} | ${mb(warm.coordinatorHeap)} → ${mb(end.coordinatorHeap)} | – | – |`,
      ...workerPorts.map(
        (_, w) =>
          `| worker ${w + 1} | ${mb(warm.workerRss[w]!)} | ${mb(end.workerRss[w]!)} | ${mb(warm.workerHeap[w]!)} → ${mb(end.workerHeap[w]!)} | ${spread(training.map((s) => s.tensors[w]!))} | ${end.tensors[w]} |`,
      ),
      '',
      'Tensors are sampled between shards (a shard computes synchronously), so 0 means nothing outlives a shard. Scrapes come',
      'from prom-client default metrics (process_resident_memory_bytes, nodejs_heap_size_used_bytes).',
      '',
      `Runs: ${records.map((r) => `${r.runId} ${r.step} steps in ${r.seconds.toFixed(0)} s (priority ${r.priority})`).join('; ')}.`,
    ];
    recordResults(lines.join('\n'));
  });
});

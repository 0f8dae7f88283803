/**
 * Issue 5 acceptance 6 / issue 15 item 2 (soak): 3 concurrent runs on tfjs share 2 worker
 * processes on the `tensorflow` backend (priorities 1, 1, 2): two sinusoid runs with
 * `model.fused: false` and a small Conv4 on glyphs (the fused host path allocates no tensors, so a
 * soak there could not see a leak). Every run succeeds; the workers' live tfjs tensors
 * (metaloop_worker_tfjs_tensors) stay bounded and none are left when idle; worker and coordinator
 * RSS stay bounded. The table goes to stdout and to test/results/soak.md (untracked): `npm test`
 * never writes tracked files.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { metaloop, startNatsServer, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { freePort, Proc, ROOT, sleep } from '@metaloop/testing';
import { apiClient, metricValue, scrape, startCoordinator, waitRunEnd, waitWorkers } from '@metaloop/testing/cluster';
import { conv4Run, requireTensorflow, sinusoidTfjsRun, startTfWorker, submitTfjs, type TfjsRun } from '@metaloop/testing/tfjs';

const RUNS: { run: TfjsRun; priority: number }[] = [
  { run: sinusoidTfjsRun(60), priority: 1 },
  { run: sinusoidTfjsRun(60), priority: 1 },
  { run: conv4Run(20), priority: 2 },
];
const TOTAL = RUNS.reduce((n, r) => n + r.run.steps, 0);
/** Most a process's RSS may grow from the first third of training to the last (a leak of one Conv4 activation set per shard would pass it in seconds). */
const RSS_GROWTH_BYTES = 64 * 2 ** 20;

interface Sample {
  readonly atSteps: number;
  readonly tensors: number[];
  readonly workerRss: number[];
  readonly workerHeap: number[];
  readonly coordinatorRss: number;
  readonly coordinatorHeap: number;
}

const mb = (b: number) => (b / 2 ** 20).toFixed(1);

/** The table, untracked: test/results/soak.md (a tracked file must not change during `npm test`). */
function recordResults(section: string): void {
  const dir = join(ROOT, 'test', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'soak.md'), `${section.trim()}\n`);
  console.log(section.split('\n').map((l) => `# ${l}`).join('\n'));
}

describe('chaos: soak — 3 concurrent tfjs runs on 2 workers (tensorflow backend)', { timeout: 900_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  let coordinatorPort = 0;
  const workerPorts: number[] = [];
  let api: { client: ApiClient; close: () => Promise<void> };

  const describeProcs = () => procs.map((p) => p.tail(10)).join('\n');
  const dead = () => procs.find((p) => p.exited)?.exitReason();

  before(async () => {
    requireTensorflow();
    nats = await startNatsServer();
    api = await apiClient(nats.url);
    const c = await startCoordinator('coordinator', nats.url, { leaseMs: 5000, env: { METALOOP_LOG_LEVEL: 'warn' } });
    procs.push(c.proc);
    coordinatorPort = c.metricsPort;
    for (const id of ['s1', 's2']) {
      const port = await freePort();
      workerPorts.push(port);
      procs.push(startTfWorker(id, nats.url, { metricsPort: port, env: { METALOOP_LOG_LEVEL: 'warn' } }));
    }
  });

  after(async () => {
    await api?.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it(`trains ${TOTAL} meta-steps in 3 tfjs runs; tensors and RSS bounded`, async () => {
    const client = api.client;
    await waitWorkers(client, 2, 60_000, describeProcs);
    const started = Date.now();
    const ids: string[] = [];
    for (const r of RUNS) ids.push(await submitTfjs(client, { ...r.run, sets: [...r.run.sets, 'checkpoint.every=20'] }, r.priority));
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
    const maxOf = (xs: readonly Sample[], pick: (s: Sample) => number) => Math.max(...xs.map(pick));
    for (let w = 0; w < workerPorts.length; w++) {
      const earlyMax = maxOf(early, (s) => s.tensors[w]!);
      const lateMax = maxOf(late, (s) => s.tensors[w]!);
      assert.ok(lateMax <= earlyMax + 20, `worker ${w + 1}: tfjs tensors grew from ${earlyMax} to ${lateMax}`);
      assert.equal(end.tensors[w], 0, `worker ${w + 1}: ${end.tensors[w]} tfjs tensors left when idle after the runs`);
      const rssEarly = maxOf(early, (s) => s.workerRss[w]!);
      const rssLate = maxOf(late, (s) => s.workerRss[w]!);
      assert.ok(rssEarly > 0, `worker ${w + 1}: no RSS scraped`);
      assert.ok(rssLate - rssEarly <= RSS_GROWTH_BYTES, `worker ${w + 1}: RSS grew from ${mb(rssEarly)} to ${mb(rssLate)} MiB while training`);
    }
    const cEarly = maxOf(early, (s) => s.coordinatorRss);
    const cLate = maxOf(late, (s) => s.coordinatorRss);
    assert.ok(cLate - cEarly <= RSS_GROWTH_BYTES, `coordinator: RSS grew from ${mb(cEarly)} to ${mb(cLate)} MiB while training`);
    const spread = (xs: number[]) => `${Math.min(...xs)}–${Math.max(...xs)}`;
    const lines = [
      '## Soak: 3 concurrent tfjs runs on 2 workers (chaos suite)',
      '',
      `Measured by \`test/src/chaos/soak.test.ts\` on ${new Date().toISOString().slice(0, 10)}: ${RUNS.map((r) => `${r.run.label} ${r.run.steps} steps (priority ${r.priority})`).join(', ')}`,
      `= ${TOTAL} meta-steps, all on tfjs (no fused path),`,
      `nats-server (JetStream on disk), coordinator and 2 worker processes (tensorflow backend), ${seconds.toFixed(0)} s wall time,`,
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
      'A scrape can land inside a shard (it yields to the event loop every 25 ms), so the training range is a shard\'s working set;',
      `0 idle at the end means nothing outlives a shard. Asserted: tensors in the last third of training ≤ first third + 20, 0 idle,`,
      `RSS growth from the first third to the last ≤ ${mb(RSS_GROWTH_BYTES)} MiB per process. Scrapes come from prom-client default metrics`,
      '(process_resident_memory_bytes, nodejs_heap_size_used_bytes).',
      '',
      `Runs: ${records.map((r) => `${r.runId} ${r.step} steps in ${r.seconds.toFixed(0)} s (priority ${r.priority})`).join('; ')}.`,
    ];
    recordResults(lines.join('\n'));
  });
});

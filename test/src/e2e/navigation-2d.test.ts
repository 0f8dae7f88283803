/**
 * Issue 26 acceptance: meta-RL on real processes. A nats-server, a coordinator process and two
 * worker processes meta-train navigation-2d (the example spec sized for CI: NAVIGATION_CI_SETS,
 * 40 meta-steps) and evaluate it on 40 held-out tasks. Asserted:
 *   - the held-out tasks gain from adaptation: the paired difference (return after 1 inner step −
 *     return before, same tasks and rollout seeds) has a 95% CI above zero;
 *   - that gain is larger for the meta-trained θ than for θ₀: the per-task difference of the two
 *     gains (θ_T's from the same computation the workers run, checked against the coordinator's
 *     figures) has a 95% CI above zero;
 *   - `status`, `events`, `report` and the coordinator's metrics (the Grafana panels' series) show
 *     returns and gains, not a loss.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeTensorBundle, initParams, loadSpec, metaloop, startNatsServer, taskSeed, type NatsServer, type RunSpec } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { computeShard, type EvalShardResult } from '@metaloop/worker';
import type { Proc } from '@metaloop/testing';
import { apiClient, metaloopCli, metricValue, scrape, startCoordinator, startWorker, waitRunEnd, waitWorkers } from '@metaloop/testing/cluster';
import { NAVIGATION_CI_SETS, NAVIGATION_EXAMPLE } from '@metaloop/testing/rl';

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ci95 = (xs: readonly number[]) => {
  const m = mean(xs);
  return (1.96 * Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1))) / Math.sqrt(xs.length);
};

/** Per held-out task: return after 1 inner step − return before, on θ (the evaluation's seeds and computation). */
async function gains(spec: RunSpec, theta: Float32Array): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < spec.eval.tasks; i++) {
    const r = (await computeShard(spec, theta, { kind: 'eval', taskSeeds: [taskSeed(spec.seed, 'eval', 0, i)], evalInnerSteps: 1 })) as EvalShardResult;
    out.push(r.evalReturnSums![1]! - r.evalReturnSums![0]!);
  }
  return out;
}

describe('meta-RL: navigation-2d over a real nats-server adapts, more after meta-training', { timeout: 600_000 }, () => {
  let nats: NatsServer;
  let api: { client: ApiClient; close: () => Promise<void> };
  const procs: Proc[] = [];
  const spec = loadSpec(readFileSync(NAVIGATION_EXAMPLE, 'utf8'), NAVIGATION_EXAMPLE, NAVIGATION_CI_SETS);
  const describeProcs = () => procs.map((p) => p.tail(15)).join('\n');
  let runId = '';
  let record: metaloop.RunRecord;
  let metricsPort = 0;

  before(async () => {
    nats = await startNatsServer();
    api = await apiClient(nats.url);
    const coordinator = await startCoordinator('coordinator', nats.url);
    metricsPort = coordinator.metricsPort;
    procs.push(coordinator.proc);
    procs.push(startWorker('nw1', nats.url), startWorker('nw2', nats.url));
  });

  after(async () => {
    await api?.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop()));
    await nats?.stop();
  });

  it('trains 40 meta-steps on two workers; held-out return after one inner step beats before (paired 95% CI > 0)', async () => {
    await waitWorkers(api.client, 2, 60_000, describeProcs);
    runId = (await api.client.submit(JSON.stringify(spec), 'navigation-2d.yaml')).runId;
    record = await waitRunEnd(api.client, runId, 420_000, describeProcs);
    assert.equal(record.state, metaloop.RunState.RUN_STATE_SUCCEEDED, `${record.error}\n${describeProcs()}`);
    assert.equal(record.step, 40);
    assert.equal(record.rl, true);
    const e = record.lastEval!;
    assert.equal(e.tasks, 40);
    assert.deepEqual(e.innerSteps, [1]);
    const [gain, ci] = [e.gain![0]!, e.gainCi95![0]!];
    console.log(`# step 40 on 40 held-out tasks: return ${e.preReturn!.toFixed(2)} ± ${e.preReturnCi95!.toFixed(2)} before, ${e.postReturn![0]!.toFixed(2)} ± ${e.returnCi95![0]!.toFixed(2)} after 1 step; gain ${gain.toFixed(2)} ± ${ci.toFixed(2)}`);
    assert.ok(gain - ci > 0, `the paired gain's 95% CI must be above 0: ${gain} ± ${ci}`);
  });

  it('the gain from adaptation is larger for the meta-trained θ than for θ₀ (per-task paired 95% CI > 0)', async () => {
    assert.ok(runId, 'the training run must have run first');
    const blob = await api.client.exportParams(runId, 'current');
    const trained = decodeTensorBundle(blob.data).data;
    const after = await gains(spec, trained);
    // The same tasks, seeds and computation as the coordinator's evaluation (summed in another order).
    assert.ok(Math.abs(mean(after) - record.lastEval!.gain![0]!) < 1e-6 * Math.abs(mean(after)), `θ_T gains ${mean(after)} vs the evaluation's ${record.lastEval!.gain![0]}`);
    const before = await gains(spec, initParams(spec).data);
    const diff = after.map((g, i) => g - before[i]!);
    console.log(`# gain after 1 step: θ₀ ${mean(before).toFixed(2)} ± ${ci95(before).toFixed(2)}, θ_40 ${mean(after).toFixed(2)} ± ${ci95(after).toFixed(2)}; difference ${mean(diff).toFixed(2)} ± ${ci95(diff).toFixed(2)}`);
    assert.ok(mean(diff) - ci95(diff) > 0, `meta-training must increase the gain: θ_T − θ₀ per task ${mean(diff)} ± ${ci95(diff)}`);
  });

  it('status, events, report and the metrics show returns and gains, not a loss', async () => {
    const text = await scrape(metricsPort);
    const run = { run: runId };
    assert.equal(metricValue(text, 'metaloop_meta_train_return', { ...run, phase: 'post' }), record.postReturn);
    assert.equal(metricValue(text, 'metaloop_eval_return', { ...run, inner_steps: '1' }), record.lastEval!.postReturn![0]);
    assert.equal(metricValue(text, 'metaloop_eval_return_gain', { ...run, inner_steps: '1' }), record.lastEval!.gain![0]);
    assert.doesNotMatch(text, new RegExp(`metaloop_(meta_train|eval)_loss\\{[^}]*run="${runId}"`), 'no loss series for a meta-RL run');
    const url = ['--nats', nats.url];
    const status = await metaloopCli([...url, 'status', runId]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /train return: -?\d/);
    assert.match(status.stdout, /last eval: {2}at step 40 on 40 tasks: return -?\d.* before adaptation, -?\d.* after 1 step \(gain \+\d/);
    assert.doesNotMatch(status.stdout, /loss/);
    const events = await metaloopCli([...url, 'events', runId, '--kind', 'step,eval']);
    assert.equal(events.code, 0, events.stderr);
    assert.equal((events.stdout.match(/ STEP return -?\d/g) ?? []).length, 40);
    assert.match(events.stdout, / EVAL 40 tasks: return -?\d.* -> -?\d.*@1 \(gain \+\d/);
    assert.doesNotMatch(events.stdout, /loss/);
    const dir = await mkdtemp(join(tmpdir(), 'metaloop-rl-report-'));
    try {
      const file = join(dir, 'report.html');
      const report = await metaloopCli([...url, 'report', runId, '--out', file]);
      assert.equal(report.code, 0, report.stderr);
      const html = await readFile(file, 'utf8');
      for (const id of ['train-return', 'eval-return', 'eval-gain']) assert.match(html, new RegExp(`id="${id}"`));
      assert.doesNotMatch(html, /id="train-loss"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

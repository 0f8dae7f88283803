/**
 * Issue 25, "the same bytes everywhere", on real processes: a nats-server, a coordinator and
 * worker processes whose data directories hold a packed dataset under one name. Two workers hold
 * the run's copy; a third holds a different one (same file name, other content). The run with the
 * odd worker live completes on the other two with θ and the final evaluation bitwise equal to the
 * run without it; the odd worker refused its shards (counted in its metrics and in the run record),
 * computed none of them, and reports its own copy's hash in its heartbeats.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateSpec } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/coordinator';
import { describeDataset, packImages } from '@metaloop/worker/data';
import { ChaosCluster } from '@metaloop/testing/chaos';
import { metricValue, scrape, startWorker, waitRunEnd, waitWorkers } from '@metaloop/testing/cluster';
import { fixtureDir, removeFixtures, writeImageFixture } from '@metaloop/testing/datasets';
import { freePort } from '@metaloop/testing';

const FILE = 'glyphs-8.mlpack';
const STEPS = 6;

async function packedCopy(salt: number): Promise<{ dir: string; sha256: string }> {
  const root = await writeImageFixture({ layout: 'classes', classes: 10, perClass: 3, format: 'png', salt });
  const dir = fixtureDir('metaloop-datadir-');
  mkdirSync(dir, { recursive: true });
  const r = await packImages({ source: root, imageSize: 8, channels: 1, out: join(dir, FILE) });
  return { dir, sha256: r.header.sha256 };
}

describe('a worker with a different copy of the data hands its shards back; θ is unchanged', { timeout: 300_000 }, () => {
  let good: { dir: string; sha256: string };
  let odd: { dir: string; sha256: string };
  let oddMetricsPort = 0;
  const cluster = new ChaosCluster({
    startWorker: (n, url) =>
      n <= 2
        ? startWorker(`dw${n}`, url, { env: { METALOOP_DATA_DIR: good.dir } })
        : startWorker(`odd${n}`, url, { env: { METALOOP_DATA_DIR: odd.dir }, metricsPort: oddMetricsPort }),
  });
  let client: ApiClient;

  const spec = () =>
    validateSpec({
      name: 'same-bytes',
      seed: 5,
      task: { family: 'fewshot-images', path: FILE, ways: 2, shots: 1, queries: 1, imageSize: 8, channels: 1, classes: { train: 6, val: 1 }, sha256: good.sha256 },
      model: { kind: 'mlp', hidden: [16] },
      algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.1 },
      outer: { steps: STEPS, metaBatch: 6, shardSize: 1 },
      eval: { every: 0, tasks: 6, innerSteps: 1 },
      checkpoint: { every: 0 },
    });

  async function train(): Promise<{ runId: string; sha: string; eval: string; rejected: Record<string, number> }> {
    const rec = await client.submit(JSON.stringify(spec()), 'same-bytes.yaml');
    const done = await waitRunEnd(client, rec.runId, 120_000, cluster.describeProcs);
    assert.equal(done.state, 4, `run ${rec.runId} ended in state ${done.state}: ${done.error}\n${cluster.describeProcs()}`);
    assert.equal(done.step, STEPS);
    return { runId: rec.runId, sha: done.paramsSha256, eval: JSON.stringify(done.lastEval), rejected: { ...done.rejected } };
  }

  before(async () => {
    good = await packedCopy(0);
    odd = await packedCopy(77);
    assert.notEqual(odd.sha256, good.sha256, 'the odd copy differs in content');
    assert.equal(describeDataset(join(good.dir, FILE)).sha256, good.sha256);
    oddMetricsPort = await freePort();
    await cluster.start(2);
    client = cluster.client;
  });
  after(async () => {
    await cluster.close();
    removeFixtures();
  });

  it('the run with the odd worker live completes on the others with the same θ, and the refusals are counted', async (t) => {
    await waitWorkers(client, 2, 60_000, cluster.describeProcs);
    const reference = await train();
    const oddProc = cluster.newWorker();
    await waitWorkers(client, 3, 60_000, cluster.describeProcs);
    const withOdd = await train();
    assert.equal(withOdd.sha, reference.sha, `θ with the odd worker live (${withOdd.runId}) differs from the run without it (${reference.runId})`);
    assert.equal(withOdd.eval, reference.eval, 'the final evaluation differs');
    assert.ok((withOdd.rejected.data_refused ?? 0) >= 1, `the coordinator counted the refusals: ${JSON.stringify(withOdd.rejected)}`);
    const text = await scrape(oddMetricsPort);
    const refusals = metricValue(text, 'metaloop_worker_shard_refusals_total', { run: withOdd.runId });
    assert.ok(refusals >= 1, `the odd worker counted its refusals: ${refusals}`);
    assert.equal(metricValue(text, 'metaloop_worker_shards_total', { run: withOdd.runId }), 0, 'the odd worker computed none of the run');
    t.diagnostic(`θ sha256 ${withOdd.sha} with the odd worker, ${reference.sha} without; coordinator data_refused ${withOdd.rejected.data_refused}; odd worker's metaloop_worker_shard_refusals_total ${refusals}, shards computed 0`);
    assert.ok(oddProc.output().some((l) => l.includes('shard refused') && l.includes(odd.sha256) && l.includes(good.sha256)), 'its log names both hashes');
    const workers = await client.workers();
    const oddHb = workers.find((w) => w.workerId.startsWith('odd'));
    assert.deepEqual(oddHb?.datasets?.map((d) => d.sha256), [odd.sha256], 'the odd worker reports the copy it holds');
    const goodHb = workers.find((w) => w.workerId === 'dw1');
    assert.deepEqual(goodHb?.datasets?.map((d) => d.sha256), [good.sha256]);
  });
});

/**
 * The worker on direct dispatch across a coordinator restart (issue 14): the shard a killed
 * coordinator session assigned is neither retried nor reported once a new session assigns work of
 * the run, and θ is cached per (coordinator session, version): the new session's version 3 is
 * fetched again, never served from the old session's cache.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { initParams, InProcTransport, metaloop, toBundle, validateSpec, type RunSpec } from '@metaloop/shared';
import { computeShard, type TrainShardResult } from './engine.js';
import { Worker } from './worker.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const spec: RunSpec = validateSpec({
  name: 'worker-direct-test',
  seed: 5,
  task: { family: 'sinusoid', shots: 5, queries: 5 },
  model: { kind: 'mlp', hidden: [10, 10] },
  algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
});
const thetaA = initParams(spec);
const thetaB = { layout: thetaA.layout, data: thetaA.data.map((v) => v * 0.5 + 0.01) };
const bundle = (t: typeof thetaA) => metaloop.TensorBundle.encode(toBundle(t)).finish();
const shard = (step: number, index: number, seeds: number[]) =>
  metaloop.Shard.encode({ runId: 'run-a', step, shard: index, paramVersion: 3, taskSeeds: seeds }).finish();

describe('Worker on direct dispatch, coordinator restart', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test("a killed session's shard is dropped once a new session assigns; θ is keyed by (session, version)", async () => {
    const coordinator = await InProcTransport.create();
    cleanups.push(() => coordinator.close());
    await coordinator.putRun('run-a', metaloop.RunRecord.encode({ runId: 'run-a', name: spec.name, specJson: JSON.stringify(spec) }).finish());
    await coordinator.putParams('run-a', 3, bundle(thetaA));
    const worker = await Worker.create({ transport: coordinator.connect(), id: 'w-d', backend: 'cpu', dispatch: 'direct', retryDelayMs: 50, resultAckMs: 2000 });
    cleanups.push(() => worker.close());
    const running = worker.run();

    // Session A assigns a shard, then dies: nobody takes its result.
    coordinator.assign('w-d', 'run-a', 0, shard(7, 0, [1, 2]), 'sessA');
    const deadline = Date.now() + 10_000;
    while (worker.statistics.tasksDone < 2 && Date.now() < deadline) await sleep(10);
    assert.equal(worker.statistics.tasksDone, 2, 'the shard of session A was computed');
    await sleep(150); // its result is being sent again and again, unacked

    // Session B resumes from a checkpoint: its version 3 is another θ (a stand-in for "not the
    // killed session's"), and it assigns work of the run.
    await coordinator.putParams('run-a', 3, bundle(thetaB));
    coordinator.assign('w-d', 'run-a', 0, shard(3, 1, [4, 5, 6]), 'sessB');
    const results: metaloop.ShardResult[] = [];
    const served = coordinator.serveResults((m) => {
      results.push(metaloop.ShardResult.decode(m.data));
    });
    cleanups.push(() => served.close());
    while (results.length < 1 && Date.now() < deadline) await sleep(10);
    await sleep(300);

    assert.deepEqual(
      results.map((r) => [r.step, r.shard, r.error]),
      [[3, 1, '']],
      "only session B's shard reaches the coordinator",
    );
    const expected = (await computeShard(spec, thetaB.data, { kind: 'train', taskSeeds: [4, 5, 6] })) as TrainShardResult;
    assert.deepEqual(new Float32Array(new Uint8Array(results[0]!.grad!.data!).buffer), expected.grad, "computed at session B's θ v3, not the cached θ v3 of session A");
    const { shardsRetried, shardsFailed, shardsDropped } = worker.statistics;
    assert.deepEqual({ shardsRetried, shardsFailed, shardsDropped }, { shardsRetried: 0, shardsFailed: 0, shardsDropped: 1 });

    await worker.close();
    await running;
  });
});

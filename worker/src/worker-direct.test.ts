/**
 * The worker on direct dispatch across a coordinator restart (issue 14): the shard a killed
 * coordinator session assigned is neither retried nor reported once a new session assigns work of
 * the run, and θ is cached per (coordinator session, version): the new session's version 3 is
 * fetched again, never served from the old session's cache.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { initParams, InProcTransport, metaloop, toBundle, validateSpec, type RunSpec } from '@metaloop/shared';
import { computeShard, type EvalShardResult, type TrainShardResult } from './engine.js';
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
    coordinator.assign('w-d', 'run-a', [{ data: shard(7, 0, [1, 2]), attempt: 0 }], 'sessA');
    const deadline = Date.now() + 10_000;
    while (worker.statistics.tasksDone < 2 && Date.now() < deadline) await sleep(10);
    assert.equal(worker.statistics.tasksDone, 2, 'the shard of session A was computed');
    await sleep(150); // its result is being sent again and again, unacked

    // Session B resumes from a checkpoint: its version 3 is another θ (a stand-in for "not the
    // killed session's"), and it assigns work of the run.
    await coordinator.putParams('run-a', 3, bundle(thetaB));
    coordinator.assign('w-d', 'run-a', [{ data: shard(3, 1, [4, 5, 6]), attempt: 0 }], 'sessB');
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

  test('the shards of one assignment come back in one request, each as computeShard gives it; a bad shard as an error result among them', async () => {
    const coordinator = await InProcTransport.create();
    cleanups.push(() => coordinator.close());
    await coordinator.putRun('run-a', metaloop.RunRecord.encode({ runId: 'run-a', name: spec.name, specJson: JSON.stringify(spec) }).finish());
    await coordinator.putParams('run-a', 3, bundle(thetaA));
    const requests = new Map<string, metaloop.ShardResult[]>();
    const served = coordinator.serveResults((m) => {
      // msgId = <the request's subject tail>.<index in the batch>
      const request = m.msgId.slice(0, m.msgId.lastIndexOf('.'));
      requests.set(request, [...(requests.get(request) ?? []), metaloop.ShardResult.decode(m.data)]);
      return { accepted: true };
    });
    cleanups.push(() => served.close());
    const worker = await Worker.create({ transport: coordinator.connect(), id: 'w-b', backend: 'cpu', dispatch: 'direct', retryDelayMs: 50, resultAckMs: 2000 });
    cleanups.push(() => worker.close());
    const running = worker.run();
    const evalShard = metaloop.Shard.encode({ runId: 'run-a', step: 3, shard: 0, paramVersion: 3, taskSeeds: [7, 8], kind: metaloop.ShardKind.SHARD_KIND_EVAL, evalInnerSteps: 2 }).finish();
    coordinator.assign(
      'w-b',
      'run-a',
      [shard(3, 0, [1, 2]), shard(3, 1, [3, 4, 5]), shard(3, 2, []), evalShard].map((data) => ({ data, attempt: 0 })),
      'sess',
    );
    const deadline = Date.now() + 10_000;
    while ([...requests.values()].flat().length < 4 && Date.now() < deadline) await sleep(10);
    await sleep(100);
    assert.equal(requests.size, 1, `one request for the whole assignment, got ${requests.size}`);
    const [results] = [...requests.values()];
    assert.deepEqual(
      results!.map((r) => [r.kind, r.shard, r.tasks, r.error.replace(/:.*$/s, '')]),
      [
        [0, 0, 2, ''],
        [0, 1, 3, ''],
        [0, 2, 0, 'ShardError'],
        [1, 0, 2, ''],
      ],
    );
    assert.match(results![2]!.error, /invalid shard .*0 task seeds/);
    for (const [i, seeds] of [
      [0, [1, 2]],
      [1, [3, 4, 5]],
    ] as const) {
      const alone = (await computeShard(spec, thetaA.data, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
      assert.deepEqual(new Float32Array(new Uint8Array(results![i]!.grad!.data!).buffer), alone.grad, `shard ${i} as computed alone`);
      assert.equal(results![i]!.preLossSum, alone.preLossSum);
    }
    const ev = (await computeShard(spec, thetaA.data, { kind: 'eval', taskSeeds: [7, 8], evalInnerSteps: 2 })) as EvalShardResult;
    assert.deepEqual(results![3]!.evalLossSums, ev.evalLossSums);
    // Counted once the reply acked them (the coordinator may hold it a while for a next assignment).
    while (worker.statistics.shardsDone < 3 && Date.now() < deadline) await sleep(10);
    assert.deepEqual({ done: worker.statistics.shardsDone, failed: worker.statistics.shardsFailed }, { done: 3, failed: 1 });
    await worker.close();
    await running;
  });
});

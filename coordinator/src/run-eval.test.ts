/** Issue 16 item 7: an evaluation tells its progress (held-out tasks done / total) as it goes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, metaloop, parseSpec, subjects } from '@metaloop/shared';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';
import { stateFromProto } from './run-state.js';
import { Evaluation, type EvalProgress } from './run-eval.js';
import { startInProcCluster } from '@metaloop/testing';

// 3 train steps, no periodic evaluation: only the final one, 12 held-out tasks in 4 shards of 3.
const SPEC = `
name: evalprog
seed: 3
task: { family: sinusoid }
model: { kind: mlp, hidden: [4] }
algorithm: { kind: maml }
outer: { optimizer: adam, lr: 0.05, metaBatch: 6, shardSize: 3, steps: 3 }
eval: { every: 0, tasks: 12, innerSteps: 2 }
checkpoint: { every: 0, keep: 1 }
`;

const quiet = createLogger('test', { level: 'error' });

describe('Evaluation progress', () => {
  it('counts the tasks of each accepted shard once; reports the last one whatever the interval', () => {
    const spec = parseSpec(SPEC.replace('tasks: 12', 'tasks: 10'));
    const every: EvalProgress[] = [];
    const each = new Evaluation({ runId: 'r', spec, layout: [], step: 1, logger: quiet, report: (p) => every.push(p), progressMs: 0 });
    assert.equal(each.total, 10);
    for (const shard of [2, 0, 0, 3, 1]) each.accepted(shard);
    assert.deepEqual(every.map((p) => p.done), [3, 6, 7, 10], 'shard sizes 3, 3, 3, 1; shard 0 counted once');
    assert.deepEqual(each.progress, { done: 10, total: 10 });

    const last: EvalProgress[] = [];
    const sparse = new Evaluation({ runId: 'r', spec, layout: [], step: 1, logger: quiet, report: (p) => last.push(p), progressMs: Infinity });
    for (const shard of [0, 1, 2, 3]) sparse.accepted(shard);
    assert.deepEqual(last, [{ done: 10, total: 10 }]);
  });

  it('the run loop publishes eval-progress events and records the progress while it evaluates', async () => {
    // Queue dispatch set explicitly: the QuadraticWorker takes shards from the work queue. Every
    // evaluation shard takes 300 ms (longer than the progress interval): each is reported.
    const evalDelay = { delayMs: (s: metaloop.Shard) => (s.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 300 : 0) };
    const cluster = await startInProcCluster((transport) => Coordinator.create({ transport, recordIntervalMs: 100, dispatch: 'queue', logger: quiet }), [evalDelay]);
    const bus = cluster.bus;
    const events: metaloop.Event[] = [];
    const sub = bus.subscribe(subjects('metaloop').eventsAll(), (data) => events.push(metaloop.Event.decode(data)));
    try {
      const client = new ApiClient({ transport: bus.connect(), timeoutMs: 2000 });
      const { runId } = await client.submit(SPEC, 'evalprog.yaml');
      const polled: metaloop.RunRecord[] = [];
      const final = await client.waitFor(runId, { pollMs: 30, onRecord: (r) => polled.push(r) });
      assert.equal(stateFromProto(final.state), 'succeeded', final.error);

      const kinds = events.map((e) => e.kind);
      const progress = events.filter((e) => e.kind === metaloop.Event.Kind.KIND_EVAL_PROGRESS);
      const done = progress.map((e) => e.evalTasksDone);
      assert.ok(progress.length >= 3, `progress events: ${JSON.stringify(done)}`);
      assert.ok(progress.every((e) => e.evalTasks === 12 && e.step === 3 && e.runId === runId));
      assert.equal(done[0], 0, 'the evaluation announces itself before any shard is back');
      assert.equal(done[done.length - 1], 12);
      assert.ok(done.some((d) => d > 0 && d < 12), `an intermediate count: ${JSON.stringify(done)}`);
      assert.deepEqual(done, [...done].sort((a, b) => a - b), 'never backwards');
      assert.ok(kinds.lastIndexOf(metaloop.Event.Kind.KIND_EVAL_PROGRESS) < kinds.indexOf(metaloop.Event.Kind.KIND_EVAL), 'progress comes before the result');

      // `status` (the run record) said so while it evaluated, and stops saying it after.
      const during = polled.filter((r) => r.evalTasks > 0);
      assert.ok(during.some((r) => r.evalTasks === 12 && r.evalTasksDone > 0 && r.evalTasksDone < 12), `records while evaluating: ${JSON.stringify(during.map((r) => r.evalTasksDone))}`);
      assert.equal(final.evalTasks, 0);
      assert.equal(final.evalTasksDone, 0);
    } finally {
      await sub.close();
      await cluster.close();
      await bus.close();
    }
  });
});

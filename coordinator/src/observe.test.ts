import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcTransport, metaloop, subjects, validateSpec } from '@metaloop/shared';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';
import { CoordinatorObservability, UNKNOWN_RUN_LABEL } from './observe.js';
import { WorkerView } from './workers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const spec = validateSpec({ name: 'obs', seed: 1, task: { family: 'sinusoid', shots: 5, queries: 5 }, model: { kind: 'mlp', hidden: [10] }, algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 } });

describe('CoordinatorObservability', () => {
  it('follows the worker view: live workers from heartbeats, draining and silent ones dropped', async () => {
    const bus = await InProcTransport.create();
    const view = new WorkerView(300);
    const watching = view.watch(bus, subjects());
    const obs = new CoordinatorObservability();
    const closer = obs.watchWorkers(view);
    const beat = (workerId: string, state = 'ready') => bus.publish(subjects().heartbeat(), metaloop.Heartbeat.encode({ workerId, state }).finish());
    try {
      beat('w1');
      beat('w2');
      await sleep(20);
      assert.equal(obs.liveWorkers(), 2);
      assert.match(await obs.registry.metrics(), /^metaloop_live_workers 2$/m);
      beat('w2', 'draining');
      await sleep(20);
      assert.match(await obs.registry.metrics(), /^metaloop_live_workers 1$/m, 'a draining worker leaves the gauge at once');
      assert.equal(obs.liveWorkers(), 1);
      await sleep(1400); // w1 went silent; the view's sweep drops it without anyone asking
      assert.match(await obs.registry.metrics(), /^metaloop_live_workers 0$/m);
      assert.equal(obs.liveWorkers(), 0);
      bus.publish(subjects().heartbeat(), new Uint8Array([0xff, 0xff, 0xff])); // garbage is ignored
      await sleep(20);
      assert.equal(obs.liveWorkers(), 0);
    } finally {
      await closer.close();
      await closer.close();
      await watching.close();
      await bus.close();
    }
  });

  it('one worker view feeds the coordinator\'s workers listing and metaloop_live_workers', async () => {
    const bus = await InProcTransport.create();
    const metrics = new CoordinatorObservability();
    const c = await Coordinator.create({ transport: bus.connect(), metrics });
    const running = c.run();
    await c.ready();
    const client = new ApiClient({ transport: bus.connect(), timeoutMs: 2000 });
    const beat = (workerId: string, state = 'ready') => bus.publish(subjects().heartbeat(), metaloop.Heartbeat.encode({ workerId, state }).finish());
    const gauge = async () => Number(/^metaloop_live_workers (\d+)$/m.exec(await metrics.registry.metrics())?.[1]);
    try {
      for (const id of ['a', 'b', 'c']) beat(id);
      await sleep(30);
      assert.deepEqual((await client.workers()).map((w) => w.workerId), ['a', 'b', 'c']);
      assert.equal(await gauge(), 3);
      beat('b', 'draining');
      await sleep(30);
      assert.deepEqual((await client.workers()).map((w) => w.workerId), ['a', 'c']);
      assert.equal(await gauge(), 2);
      assert.equal(metrics.liveWorkers(), c.workers.count());
    } finally {
      await c.close();
      await running;
      await bus.close();
    }
  });

  it('turns run events into per-run series with bounded labels', async () => {
    const obs = new CoordinatorObservability();
    obs.runStarted('r1', spec, 0, 100);
    obs.runState('r1', 'running');
    obs.runStarted('r2', spec, 5, 100);
    obs.runState('r2', 'paused');
    obs.shardPublished('r1', 0);
    obs.shardPublished('r1', 0);
    obs.shardPublished('r1', 1);
    obs.resultAccepted('r1', { tasks: 5, staleness: 0, train: true });
    obs.resultAccepted('r1', { tasks: 5, staleness: 0, train: false });
    obs.resultRejected('r1', 'duplicate');
    obs.resultRejected(undefined, 'malformed');
    obs.stepDone('r1', { step: 1, seconds: 0.05, aggregationSeconds: 0.001, updateSeconds: 0.0005, preLoss: 2, postLoss: 1 });
    obs.evaluated('r1', { step: 1, tasks: 10, innerSteps: [1, 5], preLoss: 3, postLoss: [2, 1.5] });
    obs.checkpointed('r1');
    const text = await obs.registry.metrics();
    const has = (re: RegExp) => assert.match(text, re);
    has(/^metaloop_shards_dispatched_total\{run="r1"\} 2$/m);
    has(/^metaloop_shards_redelivered_total\{run="r1"\} 1$/m);
    has(/^metaloop_shards_completed_total\{run="r1"\} 2$/m);
    has(/^metaloop_tasks_total\{run="r1"\} 5$/m);
    has(/^metaloop_results_rejected_total\{run="r1",reason="duplicate"\} 1$/m);
    has(new RegExp(`^metaloop_results_rejected_total\\{run="${UNKNOWN_RUN_LABEL}",reason="malformed"\\} 1$`, 'm'));
    has(/^metaloop_meta_steps_total\{run="r1"\} 1$/m);
    has(/^metaloop_run_step\{run="r2"\} 5$/m);
    has(/^metaloop_meta_train_loss\{run="r1",phase="post"\} 1$/m);
    has(/^metaloop_eval_loss\{run="r1",inner_steps="0"\} 3$/m);
    has(/^metaloop_eval_loss\{run="r1",inner_steps="5"\} 1\.5$/m);
    has(/^metaloop_checkpoints_total\{run="r1"\} 1$/m);
    has(/^metaloop_parameter_bytes\{run="r1"\} 400$/m);
    has(/^metaloop_runs\{state="running"\} 1$/m);
    has(/^metaloop_runs\{state="paused"\} 1$/m);
    has(/^metaloop_run_info\{run="r1",name="obs",algorithm="maml",family="sinusoid",model="mlp"\} 1$/m);
    obs.runState('r2', 'running');
    assert.match(await obs.registry.metrics(), /^metaloop_runs\{state="running"\} 2$/m);
  });
});

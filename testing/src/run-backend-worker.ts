/**
 * Child process of worker/src/run-backend-worker.test.ts (run with @metaloop/testing/no-native, so the chain finds no
 * native backend): a Worker over an in-process bus computes one Conv4 shard of a run with
 * `workers.backend: any`, then one of a run requiring cpu; prints one JSON line with what it
 * selected, what it logged, and the backend in the results and heartbeats.
 */
import { initParams, InProcTransport, metaloop, shardMsgId, subjects, toBundle, validateSpec } from '@metaloop/shared';
import { Worker } from '@metaloop/worker';

const spec = validateSpec({
  name: 'run-backend-worker',
  task: { family: 'synthetic-glyphs', ways: 2, shots: 1, queries: 2, imageSize: 16 },
  model: { kind: 'conv4', filters: 4, pool: 'max' },
  algorithm: { kind: 'fomaml', innerSteps: 1, innerLr: 0.1 },
  outer: { shardSize: 2, metaBatch: 2 },
});

const bus = await InProcTransport.create({ leaseMs: 60_000, maxDeliver: 3 });
const results: metaloop.ShardResult[] = [];
const heartbeats: metaloop.Heartbeat[] = [];
const rc = await bus.consumeResults((m) => void results.push(metaloop.ShardResult.decode(m.data)));
const hc = bus.subscribe(subjects().heartbeat(), (d) => void heartbeats.push(metaloop.Heartbeat.decode(d)));
await bus.putRun('run-c', metaloop.RunRecord.encode({ runId: 'run-c', name: spec.name, specJson: JSON.stringify(spec) }).finish());
await bus.putParams('run-c', 1, metaloop.TensorBundle.encode(toBundle(initParams(spec))).finish());
const onCpu = validateSpec({ ...spec, name: 'run-backend-cpu', workers: { backend: 'cpu' } });
await bus.putRun('run-d', metaloop.RunRecord.encode({ runId: 'run-d', name: onCpu.name, specJson: JSON.stringify(onCpu) }).finish());
await bus.putParams('run-d', 1, metaloop.TensorBundle.encode(toBundle(initParams(onCpu))).finish());
const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
const log = (msg: string, fields?: Record<string, unknown>) => void logs.push({ msg, fields });
const logger = { debug: log, info: log, warn: log, error: log, child: () => logger };
const worker = await Worker.create({ transport: bus, backend: 'any', heartbeatMs: 50, logger, dispatch: 'queue' });
const selected = worker.backend;
const running = worker.run();
await bus.publishWork('run-c', shardMsgId('run-c', 0, 0, 'train'), metaloop.Shard.encode({ runId: 'run-c', step: 0, shard: 0, paramVersion: 1, taskSeeds: [1, 2] }).finish());
const end = Date.now() + 60_000;
while (results.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 150)); // a heartbeat after the shard
const after = worker.backend;
const heartbeatAfter = heartbeats.at(-1)?.backend;
await bus.publishWork('run-d', shardMsgId('run-d', 0, 0, 'train'), metaloop.Shard.encode({ runId: 'run-d', step: 0, shard: 0, paramVersion: 1, taskSeeds: [1, 2] }).finish());
while (results.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 150));
await worker.close();
await running;
await hc.close();
await rc.close();
await bus.close();
console.log(
  JSON.stringify({
    selected,
    after,
    results: results.map((r) => ({ runId: r.runId, backend: r.backend, error: r.error, tasks: r.tasks })),
    heartbeatAfter,
    lastHeartbeat: heartbeats.at(-1)?.backend,
    lastDevice: heartbeats.at(-1)?.device,
    calibrated: logs.filter((l) => l.msg === 'backend calibrated').length,
    tried: logs.filter((l) => l.msg === 'backend unavailable').map((l) => l.fields?.backend),
  }),
);
process.exit(0);

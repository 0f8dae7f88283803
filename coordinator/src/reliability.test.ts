/**
 * Reliability features on the in-process transport: fair share by priority, speculative copies of
 * stragglers (first result wins, same θ), asynchronous mode (bounded staleness, reported),
 * run-spec limits, submit priority, and the live-worker view behind the `workers` verb.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ApiCallError, InProcTransport, metaloop, subjects } from '@metaloop/shared';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';
import type { CoordinatorOptions } from './coordinator-options.js';
import { stateFromProto } from './run-state.js';
import { FairShare, ShardTimes } from './scheduler.js';
import { startInProcCluster, type ClusterWorkerOptions } from '@metaloop/testing';

const SPEC = (steps: number, extra = '') => `
name: rel
seed: 5
task: { family: sinusoid }
model: { kind: mlp, hidden: [4] }
algorithm: { kind: maml }
outer: { optimizer: adam, lr: 0.05, metaBatch: 6, shardSize: 2, steps: ${steps} }
eval: { every: 0, tasks: 2, innerSteps: 1 }
checkpoint: { every: 0 }
${extra}`;

interface Harness {
  bus: InProcTransport;
  coordinator: Coordinator;
  client: ApiClient;
  close(): Promise<void>;
}

const open: Harness[] = [];
after(async () => {
  for (const h of open.splice(0)) await h.close();
});

async function harness(workers: ClusterWorkerOptions[], options: Partial<CoordinatorOptions> = {}, leaseMs = 10_000): Promise<Harness> {
  // QuadraticWorker takes shards from the work queue: queue dispatch, explicitly (direct is the default).
  const cluster = await startInProcCluster((transport) => Coordinator.create({ transport, recordIntervalMs: 100, dispatch: 'queue', ...options }), workers, { leaseMs });
  const h: Harness = { ...cluster, client: new ApiClient({ transport: cluster.bus.connect(), timeoutMs: 2000 }) };
  open.push(h);
  return h;
}

async function train(h: Harness, spec: string): Promise<metaloop.RunRecord> {
  const { runId } = await h.client.submit(spec, 'test.yaml');
  return h.client.waitFor(runId, { pollMs: 20 });
}

describe('FairShare', () => {
  it('splits the in-flight budget by priority and gives freed slots to the least served run', async () => {
    const fair = new FairShare(() => 4);
    const filler = await Promise.all([0, 1, 2, 3].map(() => fair.acquire('x', 1)));
    const releases = new Map<string, (() => void)[]>([['a', []], ['b', []]]);
    for (let i = 0; i < 6; i++) {
      for (const [run, w] of [['a', 1], ['b', 3]] as const) void fair.acquire(run, w).then((r) => releases.get(run)!.push(r));
    }
    filler.forEach((r) => r());
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([fair.held('a'), fair.held('b')], [1, 3], 'priority 1 : 3');
    releases.get('b')!.shift()!(); // the freed slot goes back to b (1/1 vs 3/3: b asked later, but a is at its share)
    await new Promise((r) => setImmediate(r));
    assert.equal(fair.held('a') + fair.held('b'), 4);
    releases.get('a')!.shift()!();
    await new Promise((r) => setImmediate(r));
    assert.equal(fair.held('a') + fair.held('b'), 4);
    assert.ok(fair.held('b') >= 2 * fair.held('a'), `b keeps about 3× a's share: a ${fair.held('a')}, b ${fair.held('b')}`);
  });

  it('stops waiting when the signal aborts', async () => {
    const fair = new FairShare(() => 1);
    const first = await fair.acquire('a', 1);
    const ac = new AbortController();
    const waiting = fair.acquire('b', 1, ac.signal);
    ac.abort(new Error('cancelled'));
    await assert.rejects(waiting, /cancelled/);
    first();
    assert.equal(fair.held('a'), 0);
  });

  it('ShardTimes gives the median of recent durations', () => {
    const t = new ShardTimes(5);
    assert.equal(t.median(), undefined);
    [5, 1, 9, 3, 7].forEach((x) => t.record(x));
    assert.equal(t.median(), 5);
  });
});

describe('Coordinator reliability', () => {
  let reference = '';

  it('reference run (2 workers)', async () => {
    const h = await harness([{}, {}]);
    const rec = await train(h, SPEC(8));
    assert.equal(stateFromProto(rec.state), 'succeeded', rec.error);
    reference = rec.paramsSha256;
    assert.equal(rec.speculative, 0);
  });

  it('sends a speculative copy of a straggler; the first result wins; same θ', async () => {
    let slowOnce = true;
    // Whichever worker gets shard 1 of step 4 first holds it for 1.5 s; the copy goes to the other.
    const delayMs = (s: metaloop.Shard) => {
      if (s.step === 4 && s.shard === 1 && slowOnce) {
        slowOnce = false;
        return 1500;
      }
      return 5;
    };
    const h = await harness(
      [{ delayMs }, { delayMs }],
      { speculativeFactor: 3, speculativeMinMs: 100, maxInFlightShards: 8 },
    );
    const rec = await train(h, SPEC(8));
    assert.equal(stateFromProto(rec.state), 'succeeded', rec.error);
    assert.ok(rec.speculative >= 1, `speculative copies: ${rec.speculative}`);
    assert.equal(rec.paramsSha256, reference);
  });

  it('asynchronous mode applies results computed on θ up to `staleness` versions old, and reports it', async () => {
    const h = await harness([{}, {}, {}]);
    const rec = await train(h, SPEC(10, 'workers: { staleness: 2 }'));
    assert.equal(stateFromProto(rec.state), 'succeeded', rec.error);
    assert.equal(rec.step, 10);
    assert.equal(rec.stalenessMax, 2, 'steps were issued up to 2 versions ahead');
    assert.ok(rec.stalenessMean > 0 && rec.stalenessMean <= 2, `mean staleness ${rec.stalenessMean}`);
    assert.notEqual(rec.paramsSha256, reference, 'async mode is a different algorithm');
  });

  it('refuses specs above the run-spec limits, naming the field; records the submit priority', async () => {
    const h = await harness([{}], { limits: { maxParams: 10, maxSteps: 5 } });
    await assert.rejects(h.client.submit(SPEC(8), 'big.yaml'), (err: unknown) => {
      assert.ok(err instanceof ApiCallError);
      assert.equal(err.code, 'INVALID_SPEC');
      assert.equal(err.field, 'model');
      assert.match(err.message, /parameters, above this coordinator's limit of 10/);
      assert.match(err.message, /outer\.steps: 8 is above this coordinator's limit of 5/);
      return true;
    });
    const h2 = await harness([{}]);
    const rec = await h2.client.submit(SPEC(2), 'p.yaml', { priority: 7 });
    assert.equal(rec.priority, 7);
    const spec = await h2.client.submit(SPEC(2, 'workers: { priority: 3 }'), 'p.yaml');
    assert.equal(spec.priority, 3);
  });

  it('serves the live workers (id, backend, device, shards/s, last seen) and drops draining ones', async () => {
    const h = await harness([]);
    const beat = (id: string, shardsDone: number, state = 'ready') =>
      h.bus.publish(
        subjects().heartbeat(),
        metaloop.Heartbeat.encode({ workerId: id, backend: 'cpu', device: 'cpu', shardsDone, state, timestampMs: Date.now() }).finish(),
      );
    beat('gpu-a', 0);
    beat('gpu-b', 0);
    h.bus.publish(subjects().heartbeat(), new Uint8Array([0xff, 0xff, 0xff])); // junk: ignored
    await new Promise((r) => setTimeout(r, 1100));
    beat('gpu-a', 11);
    await new Promise((r) => setTimeout(r, 20));
    let ws = await h.client.workers();
    assert.deepEqual(ws.map((w) => w.workerId), ['gpu-a', 'gpu-b']);
    const a = ws[0]!;
    assert.equal(a.backend, 'cpu');
    assert.ok(a.shardsPerSec > 5 && a.shardsPerSec < 11, `shards/s ${a.shardsPerSec}`);
    assert.ok(Math.abs(a.lastSeenMs - Date.now()) < 2000);
    beat('gpu-b', 0, 'draining');
    await new Promise((r) => setTimeout(r, 20));
    ws = await h.client.workers();
    assert.deepEqual(ws.map((w) => w.workerId), ['gpu-a']);
  });
});

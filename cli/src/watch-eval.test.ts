/** Issue 16 item 7: `watch` (followRun: events merged with polls) shows an evaluation's progress on its bar. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from '@metaloop/coordinator';
import { createLogger, metaloop, stateFromProto } from '@metaloop/shared';
import { startInProcCluster } from '@metaloop/testing';
import { barLine, followRun } from './watch.js';

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

describe('watch shows the evaluation progress', () => {
  it('on its bar, never going backwards', async () => {
    // Queue dispatch set explicitly: the QuadraticWorker takes shards from the work queue. Every
    // evaluation shard takes 300 ms (longer than the progress interval): each is reported.
    const evalDelay = { delayMs: (s: metaloop.Shard) => (s.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 300 : 0) };
    const cluster = await startInProcCluster((transport) => Coordinator.create({ transport, recordIntervalMs: 100, dispatch: 'queue', logger: quiet }), [evalDelay]);
    const bus = cluster.bus;
    try {
      const client = new ApiClient({ transport: bus.connect(), timeoutMs: 2000 });
      const { runId } = await client.submit(SPEC, 'evalprog.yaml');
      const bars: string[] = [];
      const followed = await followRun({ client, transport: bus.connect(), prefix: 'metaloop', runId, pollMs: 50, onUpdate: (v) => bars.push(barLine(v, 200)) });
      assert.equal(stateFromProto(followed.state), 'succeeded');
      const counts = bars.map((b) => /evaluating (\d+)\/12 held-out tasks…/.exec(b)?.[1]).filter((x) => x !== undefined).map(Number);
      assert.ok(counts.some((c) => c > 0 && c < 12), `watch bars: ${JSON.stringify(counts)}`);
      assert.deepEqual(counts, [...counts].sort((x, y) => x - y), `watch's count never goes backwards: ${JSON.stringify(counts)}`);
    } finally {
      await cluster.close();
      await bus.close();
    }
  });
});

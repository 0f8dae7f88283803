/**
 * `metaloop local` end to end on the embedded transport: the spec's workers.backend reaches the
 * workers it starts (in-process: Worker.create; processes: `--backend`), and the run's last
 * evaluation reports held-out accuracy ± 95% CI (classification) or loss ± CI (regression).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, metaloop, type RunSpecInput, stateFromProto, validateSpec } from '@metaloop/shared';
import { runLocal, workerArgs } from './local.js';

function spec(over: Partial<RunSpecInput>): ReturnType<typeof validateSpec> {
  return validateSpec({
    name: 'local-test',
    seed: 3,
    task: { family: 'sinusoid', shots: 5, queries: 5 },
    model: { kind: 'mlp', hidden: [8] },
    algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.05 },
    outer: { metaBatch: 4, shardSize: 2, steps: 3 },
    eval: { every: 0, tasks: 12, innerSteps: 3 },
    checkpoint: { every: 0 },
    ...over,
  });
}

async function run(s: ReturnType<typeof validateSpec>) {
  const lines: string[] = [];
  const logger = createLogger('local-test', { level: 'info', format: 'json', write: (l) => lines.push(l) });
  const r = await runLocal({ spec: s, source: 'local.test', workers: 2, embedded: true, prefix: 'metaloop', logger, pollMs: 50 });
  return { ...r, logs: lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('metaloop local', () => {
  it('passes workers.backend to worker processes as --backend (none for any); metrics on loopback', () => {
    const metrics = ['--metrics-port', '0', '--metrics-host', '127.0.0.1'];
    assert.deepEqual(workerArgs(spec({ workers: { backend: 'cpu' } })), [...metrics, '--backend', 'cpu']);
    assert.deepEqual(workerArgs(spec({})), metrics);
  });

  it('in-process workers honour workers.backend; classification eval: accuracy ± CI after 1 and K steps', async () => {
    const r = await run(
      spec({
        task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 2, imageSize: 8, classes: { train: 20, val: 5, test: 10 } },
        workers: { backend: 'cpu' },
      }),
    );
    assert.equal(stateFromProto(r.record.state), 'succeeded', r.record.error);
    const selected = r.logs.filter((l) => l.msg === 'backend selected');
    assert.ok(selected.length >= 1, 'workers log their backend');
    for (const l of selected) {
      assert.equal(l.required, 'cpu');
      assert.equal(l.backend, 'cpu');
    }
    const e = r.record.lastEval!;
    assert.equal(e.tasks, 12);
    assert.deepEqual(e.innerSteps, [1, 3]);
    const accuracy = e.accuracy ?? [];
    const ci95 = e.ci95 ?? [];
    assert.equal(accuracy.length, 2);
    assert.ok(accuracy.every((a) => a >= 0 && a <= 1));
    assert.equal(ci95.length, 2);
    assert.ok(ci95.every((c) => Number.isFinite(c) && c > 0 && c < 1));
  });

  it('regression eval: ci95 of the post-adaptation loss, no accuracy', async () => {
    const r = await run(spec({ workers: { backend: 'cpu' } }));
    assert.equal(stateFromProto(r.record.state), 'succeeded', r.record.error);
    const e = r.record.lastEval!;
    assert.equal((e.accuracy ?? []).length, 0);
    const ci95 = e.ci95 ?? [];
    assert.equal(ci95.length, 2);
    assert.deepEqual(ci95, e.lossCi95);
    assert.ok(ci95.every((c) => Number.isFinite(c) && c > 0));
  });

  it('onEvent sees every step event in order; onHeartbeat sees every worker with its backend', async () => {
    const steps: number[] = [];
    const heartbeats = new Map<string, string>();
    const s = spec({ workers: { backend: 'cpu' } });
    const r = await runLocal({
      spec: s,
      source: 'local.test',
      workers: 2,
      embedded: true,
      prefix: 'metaloop',
      logger: createLogger('local-test', { level: 'warn', format: 'json', write: () => {} }),
      pollMs: 50,
      onEvent: (ev) => {
        if (ev.kind === metaloop.Event.Kind.KIND_STEP) steps.push(ev.step);
      },
      onHeartbeat: (hb) => heartbeats.set(hb.workerId, hb.backend),
    });
    assert.equal(stateFromProto(r.record.state), 'succeeded', r.record.error);
    assert.deepEqual(steps, [1, 2, 3]);
    assert.deepEqual([...heartbeats.keys()].sort(), ['local-1', 'local-2']);
    assert.ok([...heartbeats.values()].every((b) => b === 'cpu'), JSON.stringify([...heartbeats]));
  });
});

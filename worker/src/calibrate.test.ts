/**
 * Backend calibration: both candidates timed on shards of the run's own spec, the faster one left
 * active and reported; a skipped (clearly slower) candidate is not measured.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { initParams, validateSpec } from '@metaloop/shared';
import { calibrateBackend } from './calibrate.js';
import * as tf from '@tensorflow/tfjs-core';

// ANIL: an MLP run that stays on tfjs (maml/fomaml/metasgd/reptile MLPs take the fused host path).
const sinusoid = validateSpec({
  name: 'calibrate-mlp',
  task: { family: 'sinusoid', shots: 5, queries: 5 },
  model: { kind: 'mlp', hidden: [16, 16] },
  algorithm: { kind: 'anil', innerSteps: 1, innerLr: 0.01 },
  outer: { shardSize: 4 },
});

const conv = validateSpec({
  name: 'calibrate-conv4',
  task: { family: 'synthetic-glyphs', ways: 2, shots: 1, queries: 2, imageSize: 16 },
  model: { kind: 'conv4', filters: 4, pool: 'max' },
  algorithm: { kind: 'fomaml', innerSteps: 1, innerLr: 0.1 },
  outer: { shardSize: 2 },
});

describe('backend calibration', () => {
  for (const spec of [sinusoid, conv]) {
    test(`${spec.model.kind}: times wasm and cpu on the spec and keeps the faster`, async () => {
      const logged: Record<string, unknown>[] = [];
      const log = (m: string, f?: Record<string, unknown>) => void (m === 'backend calibrated' && logged.push(f ?? {}));
      const logger = { debug: log, info: log, warn: log, error: log, child: () => logger };
      const c = await calibrateBackend(spec, initParams(spec).data, { shards: 1, measureMs: 200, logger });
      assert.deepEqual(c.timings.map((t) => t.backend), ['wasm', 'cpu']);
      for (const t of c.timings) {
        assert.equal(t.error, undefined);
        assert.ok(t.msPerTask > 0 && Number.isFinite(t.msPerTask));
        if (!t.skipped) assert.equal(t.tasksTimed, spec.outer.shardSize);
      }
      const fastest = c.timings.reduce((a, b) => (b.msPerTask < a.msPerTask ? b : a));
      assert.equal(c.chosen.name, fastest.backend);
      assert.equal(tf.getBackend(), c.chosen.name);
      assert.match(c.chosen.device, c.chosen.name === 'wasm' ? /^wasm/ : /^cpu/);
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.chosen, c.chosen.name);
      assert.ok(typeof logged[0]!.wasmMsPerTask === 'number' && typeof logged[0]!.cpuMsPerTask === 'number');
    });
  }

  test('a candidate whose warm-up task is far slower than the best is not measured', async () => {
    const c = await calibrateBackend(conv, initParams(conv).data, { shards: 1, measureMs: 100, skipFactor: 1e-6 });
    assert.equal(c.timings[0]!.skipped, false);
    assert.equal(c.timings[1]!.skipped, true);
    assert.equal(c.timings[1]!.tasksTimed, 0);
    assert.equal(c.chosen.name, 'wasm');
  });
});

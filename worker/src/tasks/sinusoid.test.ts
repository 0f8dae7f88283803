import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateSpec } from '@metaloop/shared';
import { createTaskFamily } from './index.js';
import { sampleSinusoid } from './sinusoid.js';

const spec = validateSpec({
  name: 'sin',
  task: { family: 'sinusoid', shots: 10, queries: 7, amplitude: [0.1, 5], phase: [0, Math.PI], xRange: [-5, 5] },
  model: { kind: 'mlp' },
  algorithm: { kind: 'maml' },
});

test('sinusoid tasks are a pure function of the seed', () => {
  const family = createTaskFamily(spec);
  assert.equal(family.loss, 'mse');
  const a = family.sample(1234);
  const b = family.sample(1234);
  assert.deepEqual(a, b);
  assert.equal(a.support.n, 10);
  assert.equal(a.query.n, 7);
  assert.equal(a.support.x.length, 10);
  assert.equal(a.query.y.length, 7);
});

test('different seeds give different tasks', () => {
  if (spec.task.family !== 'sinusoid') throw new Error('unreachable');
  const seen = new Set<string>();
  for (let s = 0; s < 50; s++) {
    const t = sampleSinusoid(spec.task, s);
    seen.add(`${t.amplitude},${t.phase}`);
    assert.notDeepEqual(t.support.x, sampleSinusoid(spec.task, s + 1).support.x);
  }
  assert.equal(seen.size, 50);
});

test('values lie in the spec ranges and follow y = A·sin(x − φ)', () => {
  if (spec.task.family !== 'sinusoid') throw new Error('unreachable');
  let minA = Infinity;
  let maxA = -Infinity;
  for (let s = 0; s < 200; s++) {
    const t = sampleSinusoid(spec.task, s);
    assert.ok(t.amplitude >= 0.1 && t.amplitude <= 5);
    assert.ok(t.phase >= 0 && t.phase <= Math.PI);
    minA = Math.min(minA, t.amplitude);
    maxA = Math.max(maxA, t.amplitude);
    for (const e of [t.support, t.query]) {
      for (let i = 0; i < e.n; i++) {
        const x = e.x[i]!;
        assert.ok(x >= -5 && x <= 5);
        assert.ok(Math.abs(e.y[i]! - t.amplitude * Math.sin(x - t.phase)) < 1e-5 * (1 + t.amplitude));
      }
    }
  }
  // The draws cover the range (uniform, 200 samples).
  assert.ok(minA < 0.5 && maxA > 4.5, `amplitudes in [${minA}, ${maxA}]`);
});

test('pinned values: the draw order is part of the protocol (workers must agree)', () => {
  if (spec.task.family !== 'sinusoid') throw new Error('unreachable');
  const t = sampleSinusoid(spec.task, 42);
  const again = sampleSinusoid({ ...spec.task }, 42);
  assert.equal(t.amplitude, again.amplitude);
  // Support x's come right after amplitude and phase, query x's after the support ones.
  const longer = sampleSinusoid({ ...spec.task, shots: 12 }, 42);
  assert.deepEqual(longer.support.x.subarray(0, 10), t.support.x);
});

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

/**
 * Draws written down once (computed with this code on 2026-12-04) and checked by hand, not by the
 * code under test: each A lies in [0.1, 5], each φ in [0, π], each x in [-5, 5], and each y is
 * A·sin(x − φ) (e.g. seed 42: 0.29932·sin(−0.23119 − 0.65064) = 0.29932·sin(−0.88183) =
 * 0.29932·(−0.77190) = −0.23105). Any change to the PRNG, the draw order (amplitude, phase, the
 * support x's, then the query x's) or the formula changes these and breaks every stored run.
 */
const PINNED = [
  {
    seed: 0,
    amplitude: 1.8683375750948297,
    phase: 2.3590611897301383,
    support: { x: [-0.6375724077224731, -4.570186614990234, 1.3875502347946167], y: [-0.26988494396209717, -1.1248276233673096, -1.5427589416503906] },
    query: { x: [2.896393299102783, -2.1080806255340576], y: [0.9563007950782776, 1.812432050704956] },
  },
  {
    seed: 42,
    amplitude: 0.29931572545275265,
    phase: 0.6506379173610638,
    support: { x: [-0.23119142651557922, 3.547585964202881, 2.103180170059204], y: [-0.2310427576303482, 0.07249771803617477, 0.29722532629966736] },
    query: { x: [-4.311940670013428, 3.6620142459869385], y: [0.2899966835975647, 0.03886575624346733] },
  },
  {
    seed: 2026,
    amplitude: 0.9356431202208685,
    phase: 1.0611232647428654,
    support: { x: [-4.383036136627197, 2.0439720153808594, 0.7744724750518799], y: [0.6961115002632141, 0.7785307168960571, -0.26454490423202515] },
    query: { x: [0.8610880970954895, 3.224217176437378], y: [-0.18591584265232086, 0.7762657999992371] },
  },
] as const;

test('the pinned literals are themselves sinusoid tasks of the spec (the check of the literals)', () => {
  for (const p of PINNED) {
    assert.ok(p.amplitude >= 0.1 && p.amplitude <= 5, `seed ${p.seed}: amplitude ${p.amplitude}`);
    assert.ok(p.phase >= 0 && p.phase <= Math.PI, `seed ${p.seed}: phase ${p.phase}`);
    for (const e of [p.support, p.query]) {
      e.x.forEach((x, i) => {
        assert.ok(x >= -5 && x <= 5);
        // x and y are stored as float32: agreement to float32 rounding of values below 5.
        assert.ok(Math.abs(e.y[i]! - p.amplitude * Math.sin(x - p.phase)) < 1e-6, `seed ${p.seed}: y[${i}]`);
      });
    }
  }
});

test('pinned values: sampleSinusoid reproduces the written-down draws exactly (workers must agree)', () => {
  if (spec.task.family !== 'sinusoid') throw new Error('unreachable');
  for (const p of PINNED) {
    const t = sampleSinusoid(spec.task, p.seed);
    assert.equal(t.amplitude, p.amplitude, `seed ${p.seed}: amplitude`);
    assert.equal(t.phase, p.phase, `seed ${p.seed}: phase`);
    assert.deepEqual([...t.support.x.subarray(0, 3)], p.support.x, `seed ${p.seed}: support x`);
    assert.deepEqual([...t.support.y.subarray(0, 3)], p.support.y, `seed ${p.seed}: support y`);
    assert.deepEqual([...t.query.x.subarray(0, 2)], p.query.x, `seed ${p.seed}: query x`);
    assert.deepEqual([...t.query.y.subarray(0, 2)], p.query.y, `seed ${p.seed}: query y`);
  }
  // Query x's come after all the support ones: more shots shift the query draws, not the support's.
  const t = sampleSinusoid(spec.task, 42);
  const longer = sampleSinusoid({ ...spec.task, shots: 12 }, 42);
  assert.deepEqual(longer.support.x.subarray(0, 10), t.support.x);
  assert.notDeepEqual([...longer.query.x.subarray(0, 2)], PINNED[1].query.x);
});

/**
 * Keras initialisers: names and class-name forms resolve, fans follow Keras' compute_fans, and the
 * draws have the distribution Keras gives them (bounds, spread), seeded and repeatable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../seeds.js';
import { drawInitializer, fans, resolveInitializer } from './initializers.js';

function draw(spelling: Parameters<typeof resolveInitializer>[0], shape: number[], seed = 1): Float32Array {
  const init = resolveInitializer(spelling);
  if (typeof init === 'string') assert.fail(init);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  drawInitializer(init, shape, new Rng(seed), out);
  return out;
}
const problem = (r: ReturnType<typeof resolveInitializer>) => (typeof r === 'string' ? r : `resolved to ${r.kind}`);
const std = (v: Float32Array) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
};
const maxAbs = (v: Float32Array) => v.reduce((a, b) => Math.max(a, Math.abs(b)), 0);

describe('initialisers', () => {
  test('fans as Keras computes them', () => {
    assert.deepEqual(fans([7]), { fanIn: 7, fanOut: 7 });
    assert.deepEqual(fans([4, 6]), { fanIn: 4, fanOut: 6 });
    assert.deepEqual(fans([3, 3, 4, 8]), { fanIn: 36, fanOut: 72 });
    assert.deepEqual(fans([5, 4, 8]), { fanIn: 20, fanOut: 40 });
  });

  test('zeros, ones, constant, and the class-name form', () => {
    assert.ok(draw('zeros', [5]).every((x) => x === 0));
    assert.ok(draw('ones', [5]).every((x) => x === 1));
    assert.ok(draw({ class_name: 'Constant', config: { value: 0.25 } }, [5]).every((x) => x === 0.25));
    assert.deepEqual(draw({ class_name: 'GlorotUniform', config: { seed: null } }, [3, 4]), draw('glorot_uniform', [3, 4]));
    assert.match(problem(resolveInitializer('orthogonal')), /unknown initialiser "orthogonal"/);
    assert.match(problem(resolveInitializer({ class_name: 'RandomNormal', config: { stddev: -1 } })), /bad config/);
  });

  test('uniform families: limits sqrt(6/(in+out)), sqrt(6/in), sqrt(3/in), filled out to them', () => {
    const shape = [3, 3, 16, 32];
    const cases: [string, number][] = [
      ['glorot_uniform', Math.sqrt(6 / (144 + 288))],
      ['he_uniform', Math.sqrt(6 / 144)],
      ['lecun_uniform', Math.sqrt(3 / 144)],
    ];
    for (const [name, limit] of cases) {
      const v = draw(name, shape);
      assert.ok(maxAbs(v) <= limit * (1 + 1e-6) && maxAbs(v) > 0.99 * limit, `${name}: max ${maxAbs(v)} vs ${limit}`);
      assert.ok(Math.abs(std(v) - limit / Math.sqrt(3)) < 0.03 * limit, `${name}: std ${std(v)}`);
    }
    const u = draw('uniform', [4000]);
    assert.ok(maxAbs(u) <= 0.05 && maxAbs(u) > 0.049);
  });

  test('normal families: truncated at 2σ with Keras’ σ correction; untruncated VarianceScaling', () => {
    const shape = [3, 3, 16, 32];
    // A normal truncated at ±2 has std 0.8796 of the untruncated one: Keras divides by it, so the
    // drawn values keep the target std sqrt(scale / n).
    for (const [name, target] of [['he_normal', Math.sqrt(2 / 144)], ['glorot_normal', Math.sqrt(2 / 432)], ['lecun_normal', Math.sqrt(1 / 144)]] as const) {
      const v = draw(name, shape);
      assert.ok(Math.abs(std(v) - target) < 0.03 * target, `${name}: std ${std(v)} vs ${target}`);
      assert.ok(maxAbs(v) <= (2 * target) / 0.87962566103423978 + 1e-7, `${name}: beyond 2σ`);
    }
    const kaiming = draw({ class_name: 'VarianceScaling', config: { scale: 2, mode: 'fan_out', distribution: 'untruncated_normal' } }, shape);
    const target = Math.sqrt(2 / 288);
    assert.ok(Math.abs(std(kaiming) - target) < 0.03 * target);
    assert.ok(maxAbs(kaiming) > 2.5 * target, 'untruncated: some draws beyond 2σ');
  });

  test('seeded: the same seed gives the same values, another seed others', () => {
    assert.deepEqual(draw('he_normal', [50], 3), draw('he_normal', [50], 3));
    assert.notDeepEqual(draw('he_normal', [50], 3), draw('he_normal', [50], 4));
  });
});

/**
 * The environments against their equations (./envs.ts): navigation-2d's clipping, reward and done
 * box; Gym's Pendulum-v1 step and angle wrap; tasks drawn from the seed inside the spec's ranges.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSpec, Rng, type Navigation2dTaskSpec, type PendulumTaskSpec } from '@metaloop/shared';
import { angleNormalize, createEnv, Navigation2d, Pendulum } from './envs.js';

function task<T>(yaml: string): T {
  return parseSpec(`name: t\ntask: ${yaml}\nmodel: { kind: gaussian-mlp }\nalgorithm: { kind: maml }\n`).task as T;
}

describe('navigation-2d', () => {
  const spec = task<Navigation2dTaskSpec>('{ family: navigation-2d }');

  test('defaults: goals in [-0.5, 0.5]², horizon 100, speed 0.1, done box 0.01, reward −distance, 20 episodes', () => {
    assert.deepEqual([spec.goals, spec.horizon, spec.maxSpeed, spec.doneRadius, spec.reward, spec.episodes], [[-0.5, 0.5], 100, 0.1, 0.01, 'distance', 20]);
  });

  test('a step clips the velocity per axis, rewards −‖s − g‖, ends inside the done box', () => {
    const env = new Navigation2d(spec, [0.3, -0.2]);
    const state = new Float64Array(2);
    const obs = new Float64Array(2);
    env.reset(state, 0, obs, 0);
    const r = env.step(state, 0, Float64Array.of(5, -0.04), 0, obs, 0);
    assert.deepEqual(Array.from(obs), [0.1, -0.04]);
    assert.equal(r, -Math.hypot(0.1 - 0.3, -0.04 + 0.2));
    assert.equal(env.done(state, 0), false);
    env.step(state, 0, Float64Array.of(0.1, -0.1), 0, obs, 0);
    env.step(state, 0, Float64Array.of(0.095, -0.055), 0, obs, 0);
    assert.ok(Math.abs(obs[0]! - 0.295) < 1e-12 && Math.abs(obs[1]! + 0.195) < 1e-12);
    assert.equal(env.done(state, 0), true, '|dx| and |dy| below 0.01');
    const squared = new Navigation2d(task<Navigation2dTaskSpec>('{ family: navigation-2d, reward: squared }'), [0.3, -0.2]);
    squared.reset(state, 0, obs, 0);
    assert.equal(squared.step(state, 0, Float64Array.of(0, 0), 0, obs, 0), -(0.3 * 0.3 + 0.2 * 0.2));
  });

  test('goals come from the task seed alone, inside the range', () => {
    const narrow = task<Navigation2dTaskSpec>('{ family: navigation-2d, goals: [0.2, 0.3] }');
    for (let s = 0; s < 50; s++) {
      const g = Navigation2d.sampleGoal(narrow, s);
      assert.ok(g.every((x) => x >= 0.2 && x < 0.3), String(g));
      assert.deepEqual(g, Navigation2d.sampleGoal(narrow, s));
    }
    assert.notDeepEqual(Navigation2d.sampleGoal(spec, 1), Navigation2d.sampleGoal(spec, 2));
  });
});

describe('pendulum (Gym Pendulum-v1 with per-task mass and length)', () => {
  const spec = task<PendulumTaskSpec>('{ family: pendulum, mass: [0.5, 2], length: [0.5, 2] }');

  test('angle_normalize wraps to [−π, π) like Python', () => {
    assert.equal(angleNormalize(0.5), 0.5);
    assert.ok(Math.abs(angleNormalize(2 * Math.PI + 0.5) - 0.5) < 1e-12);
    assert.ok(Math.abs(angleNormalize(-Math.PI - 0.5) - (Math.PI - 0.5)) < 1e-12);
    assert.equal(angleNormalize(Math.PI), -Math.PI);
  });

  test('one step follows the equations: cost, θ̇ update and clip, observation', () => {
    const env = new Pendulum(spec, 1.3, 0.7);
    const state = Float64Array.of(2.5, 7.5);
    const obs = new Float64Array(3);
    const r = env.step(state, 0, Float64Array.of(3), 0, obs, 0);
    const u = 2;
    const cost = 2.5 ** 2 + 0.1 * 7.5 ** 2 + 0.001 * u * u;
    assert.equal(r, -cost);
    const thdot = Math.min(8, 7.5 + ((3 * 10) / (2 * 0.7) * Math.sin(2.5) + (3 / (1.3 * 0.7 * 0.7)) * u) * 0.05);
    assert.equal(state[1], thdot);
    assert.equal(state[0], 2.5 + thdot * 0.05);
    assert.deepEqual(Array.from(obs), [Math.cos(state[0]), Math.sin(state[0]), thdot]);
    assert.equal(env.done(), false);
  });

  test('reset draws θ ∈ [−π, π), θ̇ ∈ [−1, 1) from the episode stream; dynamics from the task seed', () => {
    const env = createEnv(spec, 7) as Pendulum;
    assert.ok(env.mass >= 0.5 && env.mass < 2 && env.length >= 0.5 && env.length < 2);
    assert.deepEqual([env.mass, env.length], [(createEnv(spec, 7) as Pendulum).mass, (createEnv(spec, 7) as Pendulum).length]);
    const state = new Float64Array(2);
    const obs = new Float64Array(3);
    env.reset(state, 0, obs, 0, new Rng(3));
    assert.ok(Math.abs(state[0]!) <= Math.PI && Math.abs(state[1]!) <= 1);
    assert.equal(obs[2], state[1]);
  });
});

/**
 * The meta-RL parts of the run spec (./rl-spec.ts): defaults and their sources, the rules tying an
 * RL family to the gaussian-mlp policy and to maml/fomaml, and the policy's layout and θ₀.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpecError } from './errors.js';
import { initParams, paramLayout } from './layout.js';
import { parseSpec } from './spec.js';

const NAV = `
name: nav
task: { family: navigation-2d }
model: { kind: gaussian-mlp }
algorithm: { kind: maml, innerLr: 0.1 }
`;

function issues(yaml: string): string[] {
  try {
    parseSpec(yaml);
  } catch (err) {
    assert.ok(err instanceof SpecError);
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return assert.fail('expected the spec to be rejected');
}

describe('meta-RL run spec', () => {
  it('fills pytorch-maml-rl\'s defaults: rl section, [64, 64] tanh policy with std 1, 40 eval tasks', () => {
    const s = parseSpec(NAV);
    assert.deepEqual(s.rl, { gamma: 0.99, gaeLambda: 1, normalizeAdvantages: true, baselineReg: 1e-5, curvature: 'vpg' });
    assert.deepEqual(s.model, { kind: 'gaussian-mlp', hidden: [64, 64], activation: 'tanh', initStd: 1 });
    assert.equal(s.eval.tasks, 40);
    assert.equal(parseSpec(NAV.replace('navigation-2d', 'pendulum')).task.family, 'pendulum');
    // Supervised specs get no rl key at all.
    assert.equal('rl' in parseSpec('name: s\ntask: { family: sinusoid }\nmodel: { kind: mlp }\nalgorithm: { kind: maml }\n'), false);
  });

  it('names the field and the fix for a wrong model, algorithm or rl section', () => {
    assert.match(issues(NAV.replace('gaussian-mlp', 'mlp')).join('\n'), /model\.kind: .*use model\.kind gaussian-mlp/);
    assert.match(issues(NAV.replace('kind: maml', 'kind: reptile')).join('\n'), /algorithm\.kind: .*maml or fomaml, not reptile/);
    assert.match(issues(NAV.replace('innerLr: 0.1', 'innerLr: 0.1, multiStepLoss: true')).join('\n'), /algorithm\.multiStepLoss/);
    const sin = 'name: s\ntask: { family: sinusoid }\nmodel: { kind: gaussian-mlp }\nalgorithm: { kind: maml }\nrl: { gamma: 0.9 }\n';
    const got = issues(sin).join('\n');
    assert.match(got, /model\.kind: .*use mlp for sinusoid/);
    assert.match(got, /rl: .*remove it for sinusoid/);
    assert.match(issues(NAV + 'rl: { gamma: 1.5 }\n').join('\n'), /rl\.gamma/);
    assert.match(issues(NAV.replace('{ family: navigation-2d }', '{ family: navigation-2d, goals: [0.5, -0.5] }')).join('\n'), /task\.goals/);
  });

  it('lays θ out as the mean MLP then log_std, with log_std = log(initStd) at θ₀', () => {
    const s = parseSpec(NAV.replace('{ kind: gaussian-mlp }', '{ kind: gaussian-mlp, hidden: [5], initStd: 0.5 }'));
    assert.deepEqual(paramLayout(s), [
      { name: 'l0.w', shape: [2, 5] },
      { name: 'l0.b', shape: [5] },
      { name: 'l1.w', shape: [5, 2] },
      { name: 'l1.b', shape: [2] },
      { name: 'log_std', shape: [2] },
    ]);
    const theta = initParams(s).data;
    assert.deepEqual(Array.from(theta.slice(-2)), [Math.fround(Math.log(0.5)), Math.fround(Math.log(0.5))]);
    assert.ok(theta.slice(0, 10).some((x) => x !== 0), 'Glorot weights');
  });
});

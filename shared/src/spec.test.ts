import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpecError } from './errors.js';
import { applyOverrides, loadSpec, parseSpec, shardCount, specToYaml } from './spec.js';

const BASE = `
name: sinusoid-maml
seed: 42
task: { family: sinusoid, shots: 10, queries: 10 }
model: { kind: mlp, hidden: [40, 40] }
algorithm: { kind: maml, innerSteps: 1, innerLr: 0.01 }
outer: { optimizer: adam, lr: 0.001, metaBatch: 25, steps: 2000, shardSize: 5 }
`;

function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected SpecError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the spec to be rejected');
}

describe('run spec', () => {
  it('specToYaml: one short line per section, and it reads back to the same spec', () => {
    const spec = parseSpec(BASE);
    const text = specToYaml(spec);
    assert.deepEqual(parseSpec(text), spec);
    assert.match(text, /^task: \{ family: sinusoid, shots: 10, queries: 10\b/m);
    assert.match(text, /^model: \{ kind: mlp, hidden: \[ 40, 40 \]/m);
    // Every section of the spec on its own line (plus nested mappings such as workers' limits).
    assert.ok(text.trim().split('\n').length <= Object.keys(spec).length + 6, text);
  });

  it('accepts the documented example spec and fills defaults', () => {
    const spec = parseSpec(BASE);
    assert.equal(spec.outer.metaBatch, 25);
    assert.deepEqual(spec.task.family === 'sinusoid' && spec.task.amplitude, [0.1, 5]);
    assert.equal(spec.eval.innerSteps, 10);
    assert.equal(shardCount(spec), 5);
  });

  it('names the field, the value given and what is allowed', () => {
    const err = specError(() => parseSpec(BASE.replace('lr: 0.001', 'lr: -3'), 'bad.yaml'));
    assert.equal(err.field, 'outer.lr');
    assert.match(err.message, /bad\.yaml/);
    assert.match(err.message, /outer\.lr: got -3; expected a number > 0/);
  });

  it('rejects an unknown algorithm by listing the allowed ones', () => {
    const err = specError(() => parseSpec(BASE.replace('kind: maml', 'kind: mamll')));
    assert.equal(err.field, 'algorithm.kind');
    assert.match(err.message, /got "mamll"/);
    assert.match(err.message, /"maml"/);
    assert.match(err.message, /"fomaml"/);
  });

  it('rejects unknown fields by name', () => {
    const err = specError(() => parseSpec(BASE.replace('shardSize: 5', 'shardSize: 5, shardsize: 4')));
    assert.equal(err.field, 'outer');
    assert.match(err.message, /unknown field\(s\) "shardsize"/);
  });

  it('rejects a wrong task family and a fractional inner step count', () => {
    const err = specError(() =>
      parseSpec(BASE.replace('family: sinusoid', 'family: sine').replace('innerSteps: 1', 'innerSteps: 1.5')),
    );
    const paths = err.issues.map((i) => i.path);
    assert.ok(paths.includes('task.family'), paths.join());
    assert.ok(paths.includes('algorithm.innerSteps'), paths.join());
    assert.match(err.message, /algorithm\.innerSteps: got 1\.5; expected a whole number/);
  });

  it('checks cross-field constraints', () => {
    const err = specError(() => parseSpec(BASE.replace('shardSize: 5', 'shardSize: 50')));
    assert.equal(err.field, 'outer.shardSize');
    assert.match(err.message, /must be <= metaBatch \(25\)/);
  });

  it('reports missing sections and YAML syntax errors', () => {
    assert.match(specError(() => parseSpec('name: x\n')).message, /task: required/);
    assert.match(specError(() => parseSpec('name: [x\n')).message, /not valid YAML/);
    assert.match(specError(() => parseSpec('- 1\n- 2\n')).message, /expected a YAML mapping/);
  });

  it('applies --set overrides as YAML values', () => {
    const spec = loadSpec(BASE, 'x', ['outer.lr=3e-4', 'model.hidden=[64, 64]', 'eval.tasks=7']);
    assert.equal(spec.outer.lr, 3e-4);
    assert.deepEqual(spec.model.kind === 'mlp' && spec.model.hidden, [64, 64]);
    assert.equal(spec.eval.tasks, 7);
    assert.throws(() => applyOverrides({}, ['novalue']), /path\.to\.field=value/);
    assert.throws(() => applyOverrides({ seed: 1 }, ['seed.x=2']), /cannot set a field inside seed/);
  });

  it('evaluates on held-out classes: 600 tasks by default for classification, 100 for sinusoid, an explicit count kept', () => {
    const glyphs = BASE.replace('{ family: sinusoid, shots: 10, queries: 10 }', '{ family: synthetic-glyphs, ways: 5 }');
    const g = parseSpec(glyphs);
    assert.equal(g.eval.tasks, 600);
    assert.equal(g.eval.split, 'test');
    assert.equal(parseSpec(BASE).eval.tasks, 100);
    assert.equal(loadSpec(glyphs, 'x', ['eval.tasks=50']).eval.tasks, 50);
    assert.equal(loadSpec(glyphs, 'x', ['eval.split=val']).eval.split, 'val');
    // A validated spec round-trips through JSON (how runs travel) unchanged.
    assert.deepEqual(parseSpec(JSON.stringify(g)), g);
    const err = specError(() => loadSpec(glyphs, 'x', ['task.classes.test=0']));
    assert.equal(err.field, 'eval.split');
    assert.match(err.message, /task\.classes\.test is 0/);
    assert.equal(specError(() => loadSpec(glyphs, 'x', ['eval.split=train'])).field, 'eval.split');
  });
});

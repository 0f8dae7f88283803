import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpecError } from './errors.js';
import { parseSpec } from './spec.js';
import { specFromJson, specToJson } from './spec-json.js';

const SPEC = parseSpec(`
name: round-trip
seed: 7
task: { family: sinusoid, shots: 5, queries: 5 }
model: { kind: mlp, hidden: [8] }
algorithm: { kind: maml, innerSteps: 1, innerLr: 0.01 }
outer: { optimizer: adam, lr: 0.001, metaBatch: 4, steps: 3, shardSize: 2 }
`);

/** The SpecError `fn` throws (assert.throws checks it is one). */
function specError(fn: () => unknown): SpecError {
  let caught: unknown;
  assert.throws(() => {
    try {
      fn();
    } catch (err) {
      caught = err;
      throw err;
    }
  }, SpecError);
  return caught as SpecError;
}

describe('spec JSON round trip', () => {
  it('decodes what it encodes to the same spec', () => {
    const back = specFromJson(specToJson(SPEC), 'spec of run r');
    assert.deepEqual(back, SPEC);
  });

  it('names the source of bad JSON, an empty field and an invalid spec', () => {
    const bad = specError(() => specFromJson('{"name": ', 'spec of run r1'));
    assert.equal(bad.source, 'spec of run r1');
    assert.match(bad.message, /not JSON/);
    assert.match(specError(() => specFromJson('', 'spec of run r2')).message, /spec of run r2[\s\S]*empty/);
    const invalid = specError(() => specFromJson(JSON.stringify({ ...SPEC, outer: { ...SPEC.outer, lr: -1 } }), 'spec.json'));
    assert.equal(invalid.field, 'outer.lr');
    assert.equal(invalid.source, 'spec.json');
  });
});

/** `runSelfTest` (the library behind `metaloop-worker --self-test`) on a small Conv4 MAML workload. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateSpec } from '@metaloop/shared';
import { runSelfTest, SELF_TEST_SPEC } from './self-test.js';

// Conv4 MAML as in SELF_TEST_SPEC, small enough for the cpu backend in a unit test.
const small = validateSpec({
  name: 'self-test-small',
  seed: 3,
  task: { family: 'synthetic-glyphs', ways: 2, shots: 1, queries: 2, imageSize: 12 },
  model: { kind: 'conv4', filters: 4, pool: 'stride' },
  algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 },
  outer: { metaBatch: 4, shardSize: 2 },
});

describe('self-test', () => {
  it('default workload: Conv4 5-way 1-shot MAML, second order', () => {
    assert.equal(SELF_TEST_SPEC.model.kind, 'conv4');
    assert.equal(SELF_TEST_SPEC.algorithm.kind, 'maml');
    assert.equal(SELF_TEST_SPEC.outer.shardSize, 4);
  });

  it('prints backend, device, GPU, path and timed shards, and passes on a CPU', async () => {
    const lines: string[] = [];
    const r = await runSelfTest({ backend: 'cpu', spec: small, shards: 2, out: (l) => lines.push(l) });
    const text = lines.join('\n');
    assert.equal(r.ok, true, text);
    assert.equal(r.backend?.name, 'cpu');
    assert.equal(r.gpu, undefined);
    assert.equal(r.path, 'per-task');
    assert.equal(r.shardMs.length, 2);
    assert.ok(r.tasksPerSec > 0 && Number.isFinite(r.tasksPerSec));
    assert.match(text, /^backend: {2}cpu, device cpu \(js\)$/m);
    assert.match(text, /^gpu: {6}no GPU$/m);
    assert.match(text, /^shard 2: {2}2 tasks in /m);
    assert.match(text, /^result: {3}\d+\.\d\d tasks\/s/m);
    assert.match(text, /^self-test: ok$/m);
  });

  it('fails with --require-gpu on a CPU, and says why', async () => {
    const lines: string[] = [];
    const r = await runSelfTest({ backend: 'cpu', spec: small, shards: 1, requireGpu: true, out: (l) => lines.push(l) });
    assert.equal(r.ok, false);
    assert.match(r.problems.join('\n'), /no GPU in use/);
    assert.match(lines.join('\n'), /^self-test: FAILED$/m);
  });

  it('reports a GPU given to it (what a GPU node prints)', async () => {
    const lines: string[] = [];
    const gpu = { name: 'NVIDIA H100 80GB HBM3', memoryBytes: 81559 * 2 ** 20, driver: '550.54.15', computeCapability: '9.0' };
    const r = await runSelfTest({ backend: 'cpu', spec: small, shards: 1, requireGpu: true, gpu, out: (l) => lines.push(l) });
    assert.equal(r.ok, true, lines.join('\n'));
    assert.match(lines.join('\n'), /^gpu: {6}NVIDIA H100 80GB HBM3, 79\.6 GiB, sm_90, driver 550\.54\.15$/m);
  });
});

/**
 * The backend of a run's shards follows from its spec and the worker's --backend, never from
 * timing or history: 'any' keeps the selected backend, a named one is switched to (and back), a
 * backend the worker may not use is refused with an error naming both; fused runs leave tfjs alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { initParams, validateSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backend.js';
import { compileRun, computeShard } from './engine.js';
import { ShardError } from './errors.js';
import { RunBackends } from './run-backend.js';

const conv = validateSpec({
  name: 'run-backend-conv4',
  task: { family: 'synthetic-glyphs', ways: 2, shots: 1, queries: 2, imageSize: 16 },
  model: { kind: 'conv4', filters: 4, pool: 'max' },
  algorithm: { kind: 'fomaml', innerSteps: 1, innerLr: 0.1 },
  outer: { shardSize: 2 },
});
const onCpu = validateSpec({ ...conv, name: 'run-backend-cpu', workers: { backend: 'cpu' } });
const onTf = validateSpec({ ...conv, name: 'run-backend-tf', workers: { backend: 'tensorflow' } });
const fusedCpu = validateSpec({
  name: 'run-backend-fused',
  task: { family: 'sinusoid', shots: 5, queries: 5 },
  model: { kind: 'mlp', hidden: [8] },
  algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
  workers: { backend: 'cpu' },
});

const grad = async (spec: typeof conv) => {
  const r = await computeShard(spec, initParams(spec).data, { kind: 'train', taskSeeds: [3, 4] });
  assert.equal(r.kind, 'train');
  return Buffer.from(r.grad.buffer).toString('base64');
};

describe('RunBackends', () => {
  test("'any' keeps the selected backend; a named one is switched to and back, with identical results", async () => {
    const selected = await selectBackend({ require: 'wasm' });
    const b = new RunBackends(selected, 'any');
    assert.equal(await b.use(conv, 'm'), selected);
    assert.equal(tf.getBackend(), 'wasm');
    const first = await grad(conv);
    const cpu = await b.use(onCpu, 'm');
    assert.equal(cpu.name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal(b.current, cpu);
    await grad(onCpu);
    assert.equal((await b.use(conv, 'm')).name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(await grad(conv), first, 'the wasm result changed after a detour through cpu');
  });

  test('a backend the worker may not use is refused, naming the run, the backend and the fix', async () => {
    const b = new RunBackends(await selectBackend({ require: 'wasm' }), 'wasm');
    await assert.rejects(b.use(onCpu, 'r.1.0'), (err: unknown) => {
      assert.ok(err instanceof ShardError);
      assert.equal(err.transient, true);
      assert.match(err.message, /run run-backend-cpu requires backend 'cpu'.*--backend wasm.*--backend any/);
      return true;
    });
    const any = new RunBackends(await selectBackend({ require: 'wasm' }), 'any');
    await assert.rejects(any.use(onTf, 'r.1.0'), /requires backend 'tensorflow'.*found no native backend/);
  });

  test('a run on the fused host path uses no tfjs: the active backend stays', async () => {
    const selected = await selectBackend({ require: 'wasm' });
    const b = new RunBackends(selected, 'wasm');
    assert.equal(await b.use(fusedCpu, 'm'), selected);
    assert.equal(tf.getBackend(), 'wasm');
    // model.fused: false puts the same MLP on tfjs: then the spec's backend applies.
    const unfused = validateSpec({ ...fusedCpu, model: { kind: 'mlp', hidden: [8], fused: false } });
    assert.equal(compileRun(unfused).fused, 'model.fused: false in the spec');
    await assert.rejects(b.use(unfused, 'm'), /requires backend 'cpu'/);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initParams, validateSpec } from '@metaloop/shared';
import { selectBackend } from './backend.js';
import { computeShard, type TrainShardResult } from './engine.js';
import { checkSingleCore } from './tfjs-setup.js';

const NATIVE = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function installed(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return true;
  } catch {
    return false;
  }
}

/** Whether a native tfjs package loads here (CI builds @tensorflow/tfjs-node: .ci/before-test.d). */
const nativePresent = (await Promise.all(NATIVE.map(installed))).some(Boolean);
const NATIVE_PRESENT = 'a native tfjs package is installed here: the no-native path cannot be exercised';
const NATIVE_ABSENT = 'no native tfjs package is installed here (bash scripts/tfjs-node-from-wheel.sh builds one)';

const spec = validateSpec({
  name: 'backend-test',
  task: { family: 'sinusoid', shots: 5, queries: 5 },
  model: { kind: 'mlp', hidden: [16, 16] },
  algorithm: { kind: 'maml', innerSteps: 2, innerLr: 0.05 },
});

describe('selectBackend', () => {
  test('one tfjs-core copy for tfjs, the cpu and the wasm backends', () => {
    assert.match(checkSingleCore(), /@tensorflow[/\\]tfjs-core$/);
  });

  test("'any' walks the chain: native packages first (each failure recorded), then wasm", async () => {
    const logs: string[] = [];
    const log = (m: string, f?: Record<string, unknown>) => logs.push(`${m} ${JSON.stringify(f)}`);
    const logger = { debug: log, info: log, warn: log, error: log, child: () => logger };
    const info = await selectBackend({ require: 'any', logger });
    if (!nativePresent) {
      assert.equal(info.name, 'wasm');
      assert.match(info.device, /^wasm/);
      assert.deepEqual(info.tried.map((t) => t.name), NATIVE);
      for (const t of info.tried) assert.ok(t.error.length > 0);
      assert.equal(logs.filter((l) => l.startsWith('backend unavailable')).length, 2);
    } else {
      assert.equal(info.name, 'tensorflow');
    }
    assert.ok(logs.some((l) => l.startsWith('backend selected')));
    assert.equal(tf.getBackend(), info.name);
  });

  test("'tensorflow' without the native packages fails with every reason", { skip: nativePresent && NATIVE_PRESENT }, async () => {
    await assert.rejects(selectBackend({ require: 'tensorflow' }), (err: Error & { tried?: unknown[] }) => {
      assert.equal(err.name, 'BackendError');
      assert.equal(err.tried?.length, 2);
      assert.match(err.message, /tfjs-node-gpu.*tfjs-node/);
      return true;
    });
  });

  test("'tensorflow' with a native package installed is selected", { skip: !nativePresent && NATIVE_ABSENT }, async () => {
    const info = await selectBackend({ require: 'tensorflow' });
    assert.equal(info.name, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
    await selectBackend({ require: 'cpu' });
  });

  test('wasm, cpu (and tensorflow when installed) compute the same MAML meta-gradient (to float32 rounding)', async () => {
    const theta = initParams(spec).data;
    const shard = { kind: 'train' as const, taskSeeds: [3, 4] };
    const cpu = await selectBackend({ require: 'cpu' });
    assert.equal(cpu.name, 'cpu');
    const a = (await computeShard(spec, theta, shard, { fused: false })) as TrainShardResult;
    const wasm = await selectBackend({ require: 'wasm' });
    assert.equal(wasm.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    const b = (await computeShard(spec, theta, shard, { fused: false })) as TrainShardResult;
    const norm = Math.hypot(...a.grad);
    const diff = Math.hypot(...a.grad.map((v, i) => v - b.grad[i]!));
    assert.ok(diff / norm < 1e-4, `relative difference ${diff / norm}`);
    // Deterministic on one backend.
    const c = (await computeShard(spec, theta, shard, { fused: false })) as TrainShardResult;
    assert.deepEqual(c.grad, b.grad);
    if (nativePresent) {
      await selectBackend({ require: 'tensorflow' });
      const d = (await computeShard(spec, theta, shard, { fused: false })) as TrainShardResult;
      const gap = Math.hypot(...a.grad.map((v, i) => v - d.grad[i]!)) / norm;
      assert.ok(gap < 1e-4, `tensorflow vs cpu: relative difference ${gap}`);
      await selectBackend({ require: 'cpu' });
    }
  });

  test('an unknown preference is refused', async () => {
    await assert.rejects(selectBackend({ require: 'gpu' as never }), /gpu|backend/);
  });
});

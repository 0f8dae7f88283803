/**
 * The Worker's backend choice by measurement, end to end in a child process where the native
 * backends are hidden: the chain selects wasm, the first shard of the run calibrates wasm vs cpu
 * on that spec, and the result, the heartbeats and worker.backend all name the backend chosen.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));

describe('worker backend calibration', () => {
  test('without a native backend the worker calibrates per run spec and reports the choice', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', join(here, 'testing', 'no-native.js'), join(here, 'testing', 'calibrating-worker.js')],
      { timeout: 120_000 },
    );
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      selected: { name: string };
      after: { name: string; device: string };
      result: { backend: string; error: string; tasks: number } | null;
      lastHeartbeat: string;
      lastDevice: string;
      calibrated: { chosen: string; wasmMsPerTask: number; cpuMsPerTask: number }[];
      tried: string[];
    };
    assert.deepEqual(out.tried, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    assert.equal(out.selected.name, 'wasm');
    assert.equal(out.calibrated.length, 1);
    const c = out.calibrated[0]!;
    assert.ok(c.wasmMsPerTask > 0 && c.cpuMsPerTask > 0);
    assert.equal(c.chosen, c.wasmMsPerTask <= c.cpuMsPerTask ? 'wasm' : 'cpu');
    assert.ok(out.result, 'no shard result');
    assert.equal(out.result.error, '');
    assert.equal(out.result.tasks, 2);
    assert.equal(out.result.backend, c.chosen);
    assert.equal(out.after.name, c.chosen);
    assert.equal(out.lastHeartbeat, c.chosen);
    assert.equal(out.lastDevice, out.after.device);
  });
});

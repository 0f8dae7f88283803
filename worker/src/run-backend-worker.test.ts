/**
 * The Worker's backend per run, end to end in a child process where the native backends are
 * hidden: the chain selects wasm; a run with `workers.backend: any` is computed on it (no timing,
 * no calibration); a run requiring cpu is computed on cpu; results and heartbeats name the backend.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

/** The preload hiding tfjs-node, and the child process (a Worker of this package's build). */
const NO_NATIVE = import.meta.resolve('@metaloop/testing/no-native');
const CHILD = fileURLToPath(import.meta.resolve('@metaloop/testing/run-backend-worker'));

describe('worker backend per run', () => {
  test('without a native backend: spec any → the selected wasm, spec cpu → cpu; results and heartbeats say so', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', NO_NATIVE, CHILD],
      { timeout: 120_000 },
    );
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      selected: { name: string };
      after: { name: string; device: string };
      results: { runId: string; backend: string; error: string; tasks: number }[];
      heartbeatAfter: string;
      lastHeartbeat: string;
      lastDevice: string;
      calibrated: number;
      tried: string[];
    };
    assert.deepEqual(out.tried, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    assert.equal(out.selected.name, 'wasm');
    assert.equal(out.calibrated, 0, 'the worker timed backends: its choice would depend on load');
    assert.deepEqual(out.results, [
      { runId: 'run-c', backend: 'wasm', error: '', tasks: 2 },
      { runId: 'run-d', backend: 'cpu', error: '', tasks: 2 },
    ]);
    assert.equal(out.after.name, 'wasm');
    assert.equal(out.heartbeatAfter, 'wasm');
    assert.equal(out.lastHeartbeat, 'cpu');
    assert.match(out.lastDevice, /^cpu/);
  });
});

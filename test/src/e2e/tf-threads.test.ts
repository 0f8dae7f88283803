/**
 * Issue 27: the worker runs libtensorflow with one intra-op and one inter-op thread unless the
 * environment sets TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS (worker/src/tf-threads.ts).
 * Real worker-package processes on the tensorflow backend, each computing one Conv4 MAML shard:
 *   - variables unset: libtensorflow gets 1 and 1 (the process has as many OS threads as with
 *     both set to 1 explicitly, the device string says so) and the shard's meta-gradient is
 *     bitwise the one-thread value, whatever the machine's core count (TensorFlow's reductions
 *     split work by pool size, so a pool per core made θ depend on the machine);
 *   - variables set: they are respected (more pool threads, named in the device string).
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { killAll, runCommand } from '@metaloop/testing';
import { requireTensorflow } from '@metaloop/testing/tfjs';

const children = new Set<number>();

/** One process: select tensorflow, compute a small second-order Conv4 shard, report. */
const SCRIPT = `
import { readdirSync } from 'node:fs';
import { computeShard, selectBackend } from '@metaloop/worker';
import { initParams, validateSpec } from '@metaloop/shared';
const info = await selectBackend({ require: 'tensorflow' });
const spec = validateSpec({ name: 'threads', seed: 3, task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 4, imageSize: 16 },
  model: { kind: 'conv4', filters: 16, pool: 'max' }, algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 } });
const r = await computeShard(spec, initParams(spec).data, { kind: 'train', taskSeeds: [5, 6] }, { batchTasks: false });
console.log(JSON.stringify({ device: info.device, threads: readdirSync('/proc/self/task').length, env: [process.env.TF_NUM_INTRAOP_THREADS, process.env.TF_NUM_INTEROP_THREADS], grad: Buffer.from(r.grad.buffer).toString('base64') }));
`;

interface Report {
  readonly device: string;
  readonly threads: number;
  readonly env: [string, string];
  readonly grad: string;
}

async function worker(threads?: number): Promise<Report> {
  const env: NodeJS.ProcessEnv = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' };
  delete env.TF_NUM_INTRAOP_THREADS;
  delete env.TF_NUM_INTEROP_THREADS;
  if (threads !== undefined) env.TF_NUM_INTRAOP_THREADS = env.TF_NUM_INTEROP_THREADS = String(threads);
  const ran = await runCommand(children, process.execPath, ['--input-type=module', '-e', SCRIPT], { env, cwd: dirname(fileURLToPath(import.meta.url)), timeoutMs: 120_000 });
  assert.equal(ran.code, 0, `worker process failed:\n${ran.stderr.slice(-2000)}`);
  const line = ran.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as Report;
}

describe('libtensorflow thread pools (tensorflow backend)', { timeout: 300_000 }, () => {
  after(() => killAll(children));

  it('one intra-op and one inter-op thread unless the environment says otherwise; θ does not depend on the core count', async () => {
    requireTensorflow();
    const unset = await worker();
    const one = await worker(1);
    const three = await worker(3);
    assert.deepEqual(unset.env, ['1', '1'], 'the worker sets both variables when they are unset');
    assert.match(unset.device, /1 intra-op, 1 inter-op thread/);
    assert.equal(unset.threads, one.threads, `OS threads with the variables unset (${unset.threads}) = with both set to 1 (${one.threads})`);
    assert.equal(unset.grad, one.grad, 'the meta-gradient is bitwise the one-thread one');
    assert.deepEqual(three.env, ['3', '3'], 'set variables are kept');
    assert.match(three.device, /3 intra-op, 3 inter-op thread/);
    assert.ok(three.threads >= one.threads + 4, `3 + 3 pool threads reach libtensorflow: ${three.threads} OS threads vs ${one.threads}`);
  });
});

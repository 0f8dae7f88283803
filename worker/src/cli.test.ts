/** The metaloop-worker binary against a real nats-server (started here, stopped in `after`). */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { freePort } from '@metaloop/testing';
import {
  initParams,
  metaloop,
  NatsTransport,
  startNatsServer,
  subjects,
  toBundle,
  validateSpec,
  type Closer,
  type NatsServer,
} from '@metaloop/shared';

const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => reject(new Error(`worker pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('metaloop-worker CLI', () => {
  let server: NatsServer | undefined;
  const children: ChildProcess[] = [];
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await server?.stop();
  });

  test('NATS unreachable with --nats-wait 0: one line naming the URL, exit code 2, no stack trace', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [CLI, '--nats', url, '--nats-wait', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.equal(await exitOf(child, 20_000), 2);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.ok(lines[0]!.includes(url), stderr);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  test('started before nats-server: waits, retries with back-off (saying so), connects once the server is up', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [CLI, '--nats', url, '--id', 'early', '--backend', 'cpu', '--metrics-port=-1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const until = async (what: string, ok: () => boolean, ms: number) => {
      const end = Date.now() + ms;
      while (!ok() && Date.now() < end) await sleep(50);
      assert.ok(ok(), `${what}; worker log:\n${stderr}`);
    };
    // Two failed attempts, 0.5 s then 1 s apart: the worker is still alive and says it waits.
    await until('two retries logged', () => (stderr.match(/NATS not reachable yet; retrying in/g) ?? []).length >= 2, 20_000);
    assert.equal(child.exitCode, null, `the worker exited instead of waiting:\n${stderr}`);
    assert.match(stderr, /retrying in 0\.5 s[\s\S]*retrying in 1\.0 s/);
    assert.ok(stderr.includes(url), stderr);
    const late = await startNatsServer({ port });
    try {
      const coord = await NatsTransport.create({ servers: url });
      try {
        const beats: metaloop.Heartbeat[] = [];
        const sub = coord.subscribe(subjects().heartbeat(), (d) => beats.push(metaloop.Heartbeat.decode(d)));
        await until('a heartbeat from the worker once nats-server is up', () => beats.some((b) => b.workerId === 'early'), 60_000);
        await sub.close();
      } finally {
        await coord.close();
      }
      assert.match(stderr, /connected to NATS/);
      child.kill('SIGTERM');
      assert.equal(await exitOf(child, 20_000), 0, stderr);
    } finally {
      await late.stop();
    }
  });

  test('--help shows an example and every default', async () => {
    const child = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    assert.equal(await exitOf(child, 20_000), 0);
    assert.match(stdout, /Examples?:\n\s+\$ metaloop-worker --nats nats:\/\//);
    assert.match(stdout, /--nats-wait <seconds>[\s\S]*\(default: forever/);
  });

  test('computes a shard over NATS, heartbeats, exits 0 on SIGTERM', async () => {
    const url = server!.url;
    const spec = validateSpec({
      name: 'cli-test',
      task: { family: 'sinusoid', shots: 5, queries: 5 },
      model: { kind: 'mlp', hidden: [8, 8] },
      algorithm: { kind: 'fomaml', innerSteps: 1, innerLr: 0.01 },
    });
    const coord = await NatsTransport.create({ servers: url });
    const closers: Closer[] = [];
    try {
      const results: metaloop.ShardResult[] = [];
      const beats: metaloop.Heartbeat[] = [];
      // Direct dispatch (the default): the shards are assigned to the worker, their results are one request.
      closers.push(coord.serveResults((m) => void results.push(metaloop.ShardResult.decode(m.data))));
      closers.push(coord.subscribe(subjects().heartbeat(), (d) => beats.push(metaloop.Heartbeat.decode(d))));
      await coord.putRun('cli-run', metaloop.RunRecord.encode({ runId: 'cli-run', name: spec.name, specJson: JSON.stringify(spec) }).finish());
      await coord.putParams('cli-run', 1, metaloop.TensorBundle.encode(toBundle(initParams(spec))).finish());

      const child = spawn(process.execPath, [CLI, '--nats', url, '--id', 'cli-w', '--backend', 'cpu', '--heartbeat-ms', '100'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));

      const shard = metaloop.Shard.encode({ runId: 'cli-run', step: 0, shard: 0, paramVersion: 1, taskSeeds: [1, 2] }).finish();
      const end = Date.now() + 30_000;
      // Assigned once the worker is up (its second heartbeat comes after it subscribed to its assignments).
      while (beats.filter((b) => b.workerId === 'cli-w').length < 2 && Date.now() < end) await sleep(50);
      coord.assign('cli-w', 'cli-run', [{ data: shard, attempt: 0 }], 'cli-session');
      while ((results.length === 0 || beats.length === 0) && Date.now() < end) await sleep(50);
      assert.equal(results.length, 1, `no result; worker log:\n${stderr}`);
      const r = results[0]!;
      assert.equal(r.error, '');
      assert.equal(r.workerId, 'cli-w');
      assert.equal(r.tasks, 2);
      assert.ok(beats.some((b) => b.workerId === 'cli-w' && b.backend === 'cpu'));
      assert.ok(beats.every((b) => b.gpuName === 'no GPU' && b.gpuMemoryBytes === 0), 'heartbeats say no GPU');
      assert.match(stderr, /backend selected backend=cpu/);

      child.kill('SIGTERM');
      assert.equal(await exitOf(child, 20_000), 0, stderr);
    } finally {
      for (const c of closers) await c.close();
      await coord.close();
    }
  });

  test('--self-test: backend, device, GPU, a timed Conv4 MAML shard, tasks/s, exit 0 (no NATS)', async () => {
    const child = spawn(process.execPath, [CLI, '--self-test', '--self-test-shards', '1', '--self-test-tasks', '1', '--backend', 'wasm'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, METALOOP_NATS_URL: 'nats://127.0.0.1:1' }, // never used
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.equal(await exitOf(child, 300_000), 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /^backend: {2}wasm, device wasm/m);
    assert.match(stdout, /^gpu: {6}no GPU$/m);
    assert.match(stdout, /^workload: Conv4 \(64 filters, max-pool\) MAML, 1 inner step\(s\), synthetic-glyphs, 5-way 1-shot 28×28 \(5\+75 images\/task\), 1 tasks\/shard$/m);
    assert.match(stdout, /^shard 1: {2}1 tasks in \d+\.\d+ s/m);
    assert.match(stdout, /^result: {3}\d+\.\d\d tasks\/s/m);
    assert.match(stdout, /^self-test: ok$/m);
  });

  test('--require-gpu without --self-test: exit 1 and says why', async () => {
    const child = spawn(process.execPath, [CLI, '--require-gpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.equal(await exitOf(child, 30_000), 1);
    assert.match(stderr, /--require-gpu only applies to --self-test/);
  });
});

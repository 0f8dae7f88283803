/**
 * Issue 2 acceptance (a) + (b): a real nats-server, a coordinator process and worker processes;
 * a 200-step sinusoid MAML run submitted with the CLI succeeds with the loss going down, and the
 * same run with one worker ends with bitwise-identical parameters.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { metaloop, NatsTransport, startNatsServer, subjects, type NatsServer } from '@metaloop/shared';
import { Proc, waitFor } from '@metaloop/testing';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const METALOOP = join(ROOT, 'cli/dist/cli.js');
const WORKER = join(ROOT, 'worker/dist/cli.js');
const SPEC = join(ROOT, 'examples/sinusoid.yaml');
// The acceptance run: the example spec, 200 meta-steps, evaluated at the end on 25 held-out tasks.
const SETS = ['outer.steps=200', 'eval.every=0', 'eval.tasks=25', 'checkpoint.every=100'];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(url: string, args: readonly string[], timeoutMs = 240_000): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [METALOOP, '--nats', url, ...args], {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('distributed sinusoid MAML over a real nats-server', { timeout: 600_000 }, () => {
  let nats: NatsServer;
  let dir: string;
  const procs: Proc[] = [];
  const workers: Proc[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'metaloop-e2e-'));
    nats = await startNatsServer();
    const env = { METALOOP_LOG_LEVEL: 'info' };
    procs.push(new Proc('coordinator', process.execPath, [METALOOP, '--nats', nats.url, 'coordinator', '--metrics-port=-1'], env));
    for (const id of ['w1', 'w2']) {
      const w = new Proc(id, process.execPath, [WORKER, '--nats', nats.url, '--id', id, '--metrics-port=-1'], env);
      procs.push(w);
      workers.push(w);
    }
  });

  after(async () => {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const describeProcs = () => procs.map((p) => p.tail(15)).join('\n');
  const dead = () => [procs[0]!, ...workers].find((p) => p.exited)?.exitReason();

  /** Submit with the CLI, follow the run's step events, return the final record (as JSON) and the losses. */
  async function trainedRun(expectWorkers: number): Promise<{ status: Record<string, unknown>; losses: number[] }> {
    const observer = await NatsTransport.create({ servers: nats.url });
    const losses: number[] = [];
    const beats = new Set<string>();
    const hb = observer.subscribe(subjects().heartbeat(), (data) => {
      beats.add(metaloop.Heartbeat.decode(data).workerId);
    });
    const sub = observer.subscribe(subjects().eventsAll(), (data) => {
      const ev = metaloop.Event.decode(data);
      if (ev.kind === metaloop.Event.Kind.KIND_STEP) losses[ev.step] = ev.postLoss;
    });
    try {
      // Wait until every worker process has sent a heartbeat (they are connected and ready).
      await waitFor(`${expectWorkers} live workers`, 60_000, () => beats.size >= expectWorkers, describeProcs, dead);
      await new Promise((r) => setTimeout(r, 300));
      const submitted = await cli(nats.url, ['submit', SPEC, ...SETS.flatMap((s) => ['--set', s]), '--watch', '--json']);
      assert.equal(submitted.code, 0, `submit --watch failed:\n${submitted.stdout}\n${submitted.stderr}\n${describeProcs()}`);
      const summary = lastJson(submitted.stdout);
      assert.equal(summary.status, 'succeeded');
      assert.equal(summary.steps, 200);
      const status = await cli(nats.url, ['status', String(summary.runId), '--json']);
      assert.equal(status.code, 0, status.stderr);
      return { status: lastJson(status.stdout), losses };
    } finally {
      await sub.close();
      await hb.close();
      await observer.close();
    }
  }

  let twoWorkerHash = '';

  it('trains a 200-step run with two worker processes, loss going down', async () => {
    const { status, losses } = await trainedRun(2);
    assert.equal(status.state, 'succeeded');
    assert.equal(status.step, 200);
    const seen = losses.filter((l) => Number.isFinite(l));
    assert.ok(seen.length >= 150, `expected step events for most steps, got ${seen.length}`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(seen.slice(0, 20));
    const last = mean(seen.slice(-20));
    assert.ok(last < 0.8 * first, `post-adaptation meta-train loss should fall: first 20 steps ${first}, last 20 ${last}`);
    const ev = status.lastEval as { tasks: number; postLoss: number[]; preLoss: number } | null;
    assert.ok(ev && ev.tasks === 25, `expected a final held-out evaluation, got ${JSON.stringify(ev)}`);
    assert.ok(ev.postLoss[1]! < ev.preLoss, `10 adaptation steps should beat none: ${JSON.stringify(ev)}`);
    twoWorkerHash = String(status.paramsSha256);
    assert.match(twoWorkerHash, /^[0-9a-f]{64}$/);
  });

  it('yields bitwise-identical parameters with one worker', async () => {
    assert.ok(twoWorkerHash, 'the two-worker run must have run first');
    const w2 = workers.pop()!;
    await w2.stop();
    const { status } = await trainedRun(1);
    assert.equal(status.paramsSha256, twoWorkerHash, 'θ after 200 steps must not depend on the number of workers');
  });
});

/**
 * Issue 7 acceptance: every `metaloop` command against a real nats-server, a coordinator process
 * and a worker process, on one short shared sinusoid run (plus a long one for pause/resume/cancel):
 * output, `--output json`, exit codes, `watch` through a pseudo-terminal (util-linux `script`)
 * and through a pipe, `report`'s HTML and SVG, `export` then `eval` reproducing the run's eval to 1e-5.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { loadExportedModel } from '@metaloop/worker';
import { killAll, METALOOP, Proc, type Ran, requireExecutable, ROOT, runCommand, waitFor, WORKER } from '@metaloop/testing';
import { checkHtml, polylinePoints } from './html.js';

const SPEC = join(ROOT, 'examples/sinusoid.yaml');
const SCRIPT = requireExecutable('/usr/bin/script', 'script (util-linux)', 'apt-get install -y bsdutils');
const STEPS = 120;
const EVAL_EVERY = 40;
const INNER = 5;
const SETS = [`outer.steps=${STEPS}`, `eval.every=${EVAL_EVERY}`, 'eval.tasks=25', `eval.innerSteps=${INNER}`, `checkpoint.every=${EVAL_EVERY}`, 'checkpoint.keep=5'];
const set = (xs: readonly string[]) => xs.flatMap((s) => ['--set', s]);

const children = new Set<number>();

/** Run a command with METALOOP_LOG_LEVEL=warn and `env` over this process's environment. */
const exec = (command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<Ran> =>
  runCommand(children, command, args, { env: { ...process.env, METALOOP_LOG_LEVEL: 'warn', ...env }, timeoutMs });

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('metaloop CLI against nats-server + coordinator + worker', { timeout: 900_000 }, () => {
  let nats: NatsServer;
  let dir: string;
  const procs: Proc[] = [];
  let runId = '';
  let cli: (args: readonly string[], timeoutMs?: number) => Promise<Ran>;
  const json = <T = Record<string, unknown>>(r: Ran): T => {
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  let watchPty: Promise<Ran>;
  let watchPipe: Promise<Ran>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'metaloop-cli-'));
    nats = await startNatsServer();
    cli = (args, timeoutMs) => exec(process.execPath, [METALOOP, '--nats', nats.url, ...args], {}, timeoutMs);
    const env = { METALOOP_LOG_LEVEL: 'warn' };
    procs.push(new Proc('coordinator', process.execPath, [METALOOP, '--nats', nats.url, 'coordinator', '--metrics-port=-1'], env));
    // 10 ms per shard (5 per step): the 120-step run lasts seconds, so both watchers start while it
    // is running however fast the compute is (MLP shards take the fused host path, ~1 ms each).
    procs.push(new Proc('worker', process.execPath, [WORKER, '--nats', nats.url, '--id', 'cli-w1', '--metrics-port=-1'], { ...env, METALOOP_WORKER_SLOW_SHARD_MS: '10' }));
    const dead = () => procs.find((p) => p.exited)?.exitReason();
    await waitFor(
      'the worker in `metaloop workers`',
      120_000,
      async () => {
        const r = await cli(['workers', '--output', 'json'], 30_000);
        return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length > 0;
      },
      () => procs.map((p) => p.tail(10)).join('\n'),
      dead,
    );
  });

  after(async () => {
    killAll(children);
    await Promise.allSettled(procs.map((p) => p.stop()));
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every command has --help with an example, and every option that takes a value shows its default', async () => {
    // Options with nothing to default to: credentials and the required --out.
    const none = /--nats-(user|password|token|creds|tls-ca|tls-cert|tls-key)|--out /;
    const missing: string[] = [];
    for (const cmd of ['', 'submit', 'list', 'status', 'watch', 'cancel', 'pause', 'resume', 'workers', 'events', 'export', 'eval', 'report', 'local', 'coordinator']) {
      const r = await exec(process.execPath, [METALOOP, ...(cmd ? [cmd] : []), '--help']);
      assert.equal(r.code, 0, `${cmd} --help: ${r.stderr}`);
      assert.match(r.stdout, /Example/, `${cmd} --help has no example`);
      assert.match(r.stdout, new RegExp(`\\$ metaloop .*${cmd === 'coordinator' ? 'coordinator' : cmd}`), `${cmd} --help example`);
      // One entry per option: its line and its wrapped continuation lines.
      const entries = r.stdout.split(/\n(?= {2}-)/).filter((e) => /^ {2}-.*<[^>]+>/.test(e));
      for (const e of entries) if (!none.test(e) && !/default/.test(e)) missing.push(`${cmd || 'metaloop'}: ${e.trim().split('\n')[0]}`);
    }
    assert.deepEqual(missing, [], 'options whose --help does not show the default');
  });

  it('submit prints the run id; watch follows it in a pseudo-terminal (live bar) and through a pipe (plain lines)', async () => {
    const r = await cli(['submit', SPEC, ...set(SETS)]);
    assert.equal(r.code, 0, r.stderr);
    runId = r.stdout.trim();
    assert.match(runId, /^sinusoid-maml-[0-9a-f]{6}$/);
    // Both watchers start while the run is running and end with it.
    const cmd = [process.execPath, METALOOP, '--nats', nats.url, 'watch', runId].map(shellQuote).join(' ');
    watchPty = exec(SCRIPT, ['-qfec', cmd, '/dev/null'], { COLUMNS: '120' }, 400_000);
    watchPipe = cli(['watch', runId], 400_000);
    const pty = await watchPty;
    assert.equal(pty.code, 0, `watch in a pty: exit ${pty.code}\n${pty.stderr}\n${pty.stdout.slice(-2000)}`);
    // Each redraw returns to the line start and erases it (a pty without a controlling terminal's
    // settings may map the carriage return to a newline on output: count the erase sequences).
    const redraws = pty.stdout.split('\x1b[2K').length - 1;
    assert.ok(redraws >= 2, `expected the bar to be redrawn in place, got ${redraws} redraws:\n${JSON.stringify(pty.stdout.slice(0, 500))}`);
    assert.match(pty.stdout, /\[█+░*\]|\[░+\]/, 'a bar of █/░');
    assert.match(pty.stdout, /tasks\/s/);
    assert.match(pty.stdout, new RegExp(`${STEPS}/${STEPS}`));
    assert.match(pty.stdout, /succeeded/);
    const pipe = await watchPipe;
    assert.equal(pipe.code, 0, pipe.stderr);
    // The escape character (ESC, \x1b) is exactly what this asserts is absent.
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(pipe.stdout, /\r|\x1b\[/, 'no control sequences when stdout is not a TTY');
    const lines = pipe.stdout.trim().split('\n');
    assert.ok(lines.some((l) => l.startsWith(`[${runId}] running  step`)), pipe.stdout);
    assert.match(pipe.stdout, new RegExp(`run ${runId} succeeded: ${STEPS}/${STEPS} meta-steps`));
  });

  it('status, list and workers: text and --output json', async () => {
    const text = await cli(['status', runId]);
    assert.equal(text.code, 0, text.stderr);
    for (const key of ['state:      succeeded', `step:       ${STEPS}/${STEPS}`, 'train loss:', 'speed:', 'last eval:  at step ', `checkpoint: step ${STEPS}`, 'workers:    1 live (cli-w1']) {
      assert.ok(text.stdout.includes(key), `status lacks ${JSON.stringify(key)}:\n${text.stdout}`);
    }
    const status = json(await cli(['status', runId, '--output', 'json']));
    assert.equal(status.state, 'succeeded');
    assert.equal(status.step, STEPS);
    assert.equal(status.checkpointStep, STEPS);
    assert.equal((status.lastEval as { step: number }).step, STEPS);
    assert.equal(status.etaSeconds, 0);
    assert.equal((status.workers as { id: string }[])[0]!.id, 'cli-w1');
    const list = json<{ runId: string; state: string }[]>(await cli(['list', '--output', 'json']));
    assert.ok(list.some((r) => r.runId === runId && r.state === 'succeeded'));
    const table = await cli(['list']);
    assert.match(table.stdout, /^RUN\s+STATE\s+STEP/);
    assert.ok(table.stdout.includes(runId));
    const workers = json<{ id: string; backend: string; device: string; gpu: string | null; gpuMemoryBytes: number; shardsPerSec: number; lastSeenMs: number }[]>(
      await cli(['workers', '-o', 'json']),
    );
    assert.equal(workers.length, 1);
    assert.equal(workers[0]!.id, 'cli-w1');
    assert.ok(workers[0]!.backend && workers[0]!.device);
    // No GPU on our machines: the worker's heartbeat says so (issue 18).
    assert.equal(workers[0]!.gpu, 'no GPU');
    assert.equal(workers[0]!.gpuMemoryBytes, 0);
    assert.ok(Date.now() - workers[0]!.lastSeenMs < 30_000);
    const wtext = await cli(['workers']);
    assert.match(wtext.stdout, /^WORKER\s+BACKEND\s+DEVICE\s+GPU\s+STATE\s+SHARDS\/S/);
    assert.match(wtext.stdout, /^cli-w1\s+\S+\s+.*\s{2}no GPU\s{2}/m);
  });

  it('events: the recorded history (one STEP line per step), NDJSON, --follow on an ended run', async () => {
    const text = await cli(['events', runId]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    const evals = STEPS / EVAL_EVERY;
    assert.equal(lines.filter((l) => / STEP /.test(l)).length, STEPS);
    assert.equal(lines.filter((l) => / EVAL /.test(l)).length, evals);
    assert.equal(lines.filter((l) => / CHECKPOINT /.test(l)).length, evals);
    const nd = (await cli(['events', runId, '--kind', 'eval', '--output', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number });
    assert.deepEqual(nd.map((e) => [e.kind, e.step]), Array.from({ length: evals }, (_, i) => ['eval', (i + 1) * EVAL_EVERY]));
    const follow = await cli(['events', runId, '--follow', '--kind', 'state']);
    assert.equal(follow.code, 0, follow.stderr);
    assert.match(follow.stdout.trim(), /STATE succeeded$/);
    // The history records the state changes (issue 16): submitted at 0, running, succeeded at the end.
    const states = (await cli(['events', runId, '--kind', 'state', '-o', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { change: string; state: string; step: number });
    assert.deepEqual(states.map((e) => [e.change, e.step]), [['submitted', 0], ['running', 0], ['succeeded', STEPS]]);
    assert.equal(follow.stdout.trim().split('\n').length, 3, `--follow on an ended run prints its end once:\n${follow.stdout}`);
    const bad = await cli(['events', runId, '--kind', 'evals']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /step, eval, state, checkpoint/);
  });

  it('a reader that goes away (`| head`): exit 0 and nothing on stderr, no EPIPE stack', async () => {
    for (const args of [['events', runId], ['status', runId], ['list']]) {
      // The reading end is closed before the command writes anything: every write fails with EPIPE.
      const child = spawn(process.execPath, [METALOOP, '--nats', nats.url, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child.pid!);
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      children.delete(child.pid!);
      assert.equal(code, 0, `${args.join(' ')} into a closed pipe: exit ${code}\n${stderr}`);
      assert.equal(stderr, '', args.join(' '));
    }
    // The issue's own command lines, through a shell (pipefail: the pipeline fails if metaloop does).
    for (const [args, n] of [[`events ${runId}`, 2], [`status ${runId}`, 1]] as const) {
      const r = await exec('/bin/bash', ['-c', `set -o pipefail; ${shellQuote(process.execPath)} ${shellQuote(METALOOP)} --nats ${nats.url} ${args} | head -${n}`]);
      assert.equal(r.code, 0, `${args} | head -${n}: exit ${r.code}\n${r.stderr}`);
      assert.equal(r.stderr, '');
      assert.equal(r.stdout.trim().split('\n').length, n);
    }
  });

  it('report: one self-contained HTML page whose SVG has one point per recorded step and evaluation', async () => {
    const file = join(dir, 'report.html');
    const r = await cli(['report', runId, '--out', file]);
    assert.equal(r.code, 0, r.stderr);
    const html = readFileSync(file, 'utf8');
    checkHtml(html);
    assert.doesNotMatch(html, /\s(src|href)\s*=|<script|<link|@import|url\(/i, 'nothing loaded from elsewhere');
    const train = polylinePoints(html, 'train-loss');
    assert.deepEqual(Object.keys(train).sort(), ['after adaptation', 'before adaptation']);
    for (const pts of Object.values(train)) assert.equal(pts.length, STEPS);
    const evals = polylinePoints(html, 'eval-loss');
    assert.deepEqual(Object.keys(evals).sort(), ['held-out, 0 steps', 'held-out, 1 step', `held-out, ${INNER} steps`].sort());
    for (const pts of Object.values(evals)) assert.equal(pts.length, STEPS / EVAL_EVERY);
    // one 95% CI bar per evaluation point (0, 1 and K steps)
    assert.equal((html.match(/<line class="ci"/g) ?? []).length, (STEPS / EVAL_EVERY) * 3);
    // x grows with the step; all points inside the plot
    const before = train['before adaptation']!;
    for (let i = 1; i < before.length; i++) assert.ok(before[i]![0] > before[i - 1]![0]);
    assert.match(html, /<pre id="spec">name: sinusoid-maml\n[\s\S]*metaBatch: 25/);
    assert.match(html, /time running/);
    const j = json(await cli(['report', runId, '--out', file, '-o', 'json']));
    assert.equal(j.steps, STEPS);
  });

  it('export then eval on the exported directory reproduces the run’s final evaluation to 1e-5', async (t) => {
    const status = json<{ lastEval: { innerSteps: number[]; preLoss: number; postLoss: number[] } }>(await cli(['status', runId, '-o', 'json']));
    const out = join(dir, 'model');
    const ex = json<{ step: number; source: string; files: string[] }>(await cli(['export', runId, '--checkpoint', 'latest', '--out', out, '-o', 'json']));
    assert.equal(ex.step, STEPS);
    assert.equal(ex.source, 'checkpoint');
    for (const f of ['model.json', 'group1-shard1of1.bin', 'spec.json']) assert.ok(existsSync(join(out, f)), f);
    const modelJson = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[] };
    const weights = modelJson.weightsManifest[0]!.weights;
    assert.deepEqual(weights.map((w) => w.name), ['l0.w', 'l0.b', 'l1.w', 'l1.b', 'l2.w', 'l2.b']);
    assert.ok(weights.every((w) => w.dtype === 'float32'));
    const model = await loadExportedModel(out);
    try {
      assert.equal(model.params.length, 1 * 40 + 40 + 40 * 40 + 40 + 40 + 1);
      const y = model.predict([0, 1, 2], 3);
      assert.equal(y.length, 3);
      assert.ok([...y].every(Number.isFinite));
    } finally {
      model.dispose();
    }
    const ev = json<{ innerSteps: number[]; loss: { mean: number; ci95: number }[]; tasks: number }>(await cli(['eval', out, '--tasks', '25', '-o', 'json'], 300_000));
    assert.deepEqual(ev.innerSteps, [0, 1, INNER]);
    assert.equal(ev.tasks, 25);
    const expected = [status.lastEval.preLoss, status.lastEval.postLoss[0]!, status.lastEval.postLoss[1]!];
    // The same θ, the same held-out task seeds, the same compute: the means agree to rounding (the
    // run sums per-shard losses, eval per-task ones), far inside the CI, which only bounds noise.
    ev.loss.forEach((l, i) => {
      assert.ok(l.ci95 > 0);
      const gap = Math.abs(l.mean - expected[i]!) / Math.max(1, Math.abs(expected[i]!));
      t.diagnostic(`after ${ev.innerSteps[i]} steps: eval ${l.mean}, run ${expected[i]}, relative gap ${gap.toExponential(2)} (CI ±${l.ci95.toPrecision(2)})`);
      assert.ok(gap <= 1e-5, `after ${ev.innerSteps[i]} steps: eval of the export gives ${l.mean}, the run's own evaluation ${expected[i]} (relative gap ${gap}, must be <= 1e-5)`);
    });
    const text = await cli(['eval', runId, '--tasks', '5', '--split', 'test'], 300_000);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /after\s+5 steps: loss [\d.]+ ± [\d.]+/);
    // best: the kept checkpoint whose evaluation is best; an absent step is refused
    const best = json<{ step: number }>(await cli(['export', runId, '--checkpoint', 'best', '--out', join(dir, 'best'), '-o', 'json']));
    assert.ok([40, 80, 120].includes(best.step));
    const missing = await cli(['export', runId, '--checkpoint', '7', '--out', join(dir, 'x')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no checkpoint at step 7/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
  });

  it('pause, resume, cancel a second run; watch of a cancelled run exits 1', async () => {
    const long = (await cli(['submit', SPEC, ...set(['outer.steps=100000', 'eval.every=0', 'checkpoint.every=0']), '-o', 'json'])).stdout;
    const id = (JSON.parse(long) as { runId: string }).runId;
    // Follows live events until the run ends (the cancel below).
    const follow = cli(['events', id, '--follow', '--kind', 'state', '-o', 'json'], 120_000);
    const paused = await cli(['pause', id]);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(paused.stdout.trim(), `${id}: paused`);
    assert.equal(json(await cli(['status', id, '-o', 'json'])).state, 'paused');
    assert.equal(json(await cli(['resume', id, '-o', 'json'])).state, 'running');
    const cancelled = await cli(['cancel', id]);
    assert.equal(cancelled.stdout.trim(), `${id}: cancelled`);
    const followed = await follow;
    assert.equal(followed.code, 0, followed.stderr);
    const recorded = (await cli(['events', id, '--kind', 'state', '-o', 'json'])).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { change: string }).change);
    assert.deepEqual(recorded, ['submitted', 'running', 'paused', 'resumed', 'cancelled']);
    const states = followed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; state: string });
    assert.ok(states.every((e) => e.kind === 'state'));
    assert.equal(states[states.length - 1]!.state, 'cancelled');
    const w = await cli(['watch', id]);
    assert.equal(w.code, 1, w.stderr);
    assert.match(w.stdout, /cancelled/);
    const again = await cli(['cancel', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already ended/);
  });

  it('submit --watch --output json: progress on stderr, the JSON summary on stdout, exit 0', async () => {
    const r = await cli(['submit', SPEC, ...set(['outer.steps=8', 'eval.every=0', 'eval.tasks=5', 'checkpoint.every=0']), '--watch', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { status: string; steps: number; eval: { tasks: number } };
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.steps, 8);
    assert.equal(summary.eval.tasks, 5);
    assert.match(r.stderr, /^submitted sinusoid-maml-[0-9a-f]{6}$/m);
    assert.match(r.stderr, /succeeded {2}step 8\/8/);
  });

  it('unknown run: one line, exit 4, for every command that takes a run', async () => {
    for (const args of [['status', 'nope-000000'], ['watch', 'nope-000000'], ['events', 'nope-000000'], ['report', 'nope-000000', '--out', join(dir, 'n.html')], ['export', 'nope-000000', '--out', join(dir, 'n')], ['eval', 'nope-000000'], ['pause', 'nope-000000']]) {
      const r = await cli(args);
      assert.equal(r.code, 4, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^error: unknown run "nope-000000"/);
    }
  });

  /** `metaloop watch RUN` started and following (its first progress line out); `ended(ms)` its exit code (null after ms). */
  async function watching(id: string): Promise<{ out: Ran; ended: (ms: number) => Promise<Ran> }> {
    const child = spawn(process.execPath, [METALOOP, '--nats', nats.url, 'watch', id], { env: { ...process.env, METALOOP_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child.pid!);
    const out: Ran = { code: null, stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    await waitFor('watch to print its first line', 60_000, () => out.stdout.includes(`[${id}] running`));
    return {
      out,
      ended: async (ms) => {
        out.code = await Promise.race([exited, new Promise<null>((done) => setTimeout(() => done(null), ms).unref())]);
        children.delete(child.pid!);
        return out;
      },
    };
  }
  const submitted = async (sets: string[]) => (JSON.parse((await cli(['submit', SPEC, ...set(sets), '-o', 'json'])).stdout) as { runId: string }).runId;

  it('watch: a short NATS restart is survived (the client reconnects), the run is followed to its end', async () => {
    const id = await submitted(['outer.steps=400', 'eval.every=0', 'eval.tasks=5', 'checkpoint.every=100']);
    const w = await watching(id);
    await nats.restart({ downMs: 2000 });
    const r = await w.ended(300_000);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-1000)}`);
    assert.match(r.stdout, new RegExp(`run ${id} succeeded: 400/400 meta-steps`));
  });

  // Last: it stops the shared nats-server.
  it('watch: NATS going away for good is "lost the connection" (exit 2, after 30 s of reconnecting), not "is a coordinator running?"', async () => {
    const id = await submitted(['outer.steps=100000', 'eval.every=0', 'checkpoint.every=0']);
    const w = await watching(id);
    await nats.stop();
    const r = await w.ended(90_000);
    assert.equal(r.code, 2, `exit ${r.code}\n${r.stderr}`);
    // The last line is the error (the transport may log its reconnect attempts before it).
    assert.match(r.stderr.trim().split('\n').pop()!, /^error: lost the connection to NATS at nats:\/\/127\.0\.0\.1:\d+/, r.stderr);
    assert.doesNotMatch(r.stderr, /coordinator running/);
  });
});

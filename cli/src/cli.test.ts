import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { EXIT } from '@metaloop/client';
import { childPids, CLI, freePort, Proc, type Ran, runMetaloop } from '@metaloop/testing';

const EXAMPLE = fileURLToPath(new URL('../../examples/sinusoid.yaml', import.meta.url));

const children = childPids();

function metaloop(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Ran> {
  return runMetaloop(children, args, { METALOOP_NATS_URL: '', ...env }, timeoutMs);
}

const SHORT = ['--set', 'outer.steps=6', '--set', 'eval.every=3', '--set', 'eval.tasks=5', '--set', 'eval.innerSteps=2'];

describe('metaloop CLI', () => {
  it('NATS unreachable: one line naming the URL, exit 2, no stack trace', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const r = await metaloop(['list', '--nats', url]);
    assert.equal(r.code, EXIT.UNREACHABLE);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0]!.includes(url), r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('invalid spec: message names the field, exit 3, nothing sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metaloop-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: x\ntask: {family: sinusoid}\nmodel: {kind: mlp}\nalgorithm: {kind: maml}\nouter: {metaBatch: 0}\n');
    // An unreachable server: submit must fail on the spec before it tries to connect.
    const r = await metaloop(['submit', bad, '--nats', `nats://127.0.0.1:${await freePort()}`]);
    assert.equal(r.code, EXIT.INVALID_SPEC);
    assert.match(r.stderr, /outer\.metaBatch/);
    const o = await metaloop(['submit', EXAMPLE, '--set', 'algorithm.innerLr=-1', '--nats', 'nats://127.0.0.1:1']);
    assert.equal(o.code, EXIT.INVALID_SPEC);
    assert.match(o.stderr, /algorithm\.innerLr/);
  });

  describe('against a nats-server', () => {
    let server: NatsServer;
    after(async () => server?.stop());

    it('no coordinator: exit 5; unknown run: exit 4', async () => {
      server = await startNatsServer();
      const env = { METALOOP_NATS_URL: server.url };
      const t = await metaloop(['status', 'nope-1'], env);
      assert.equal(t.code, EXIT.TIMEOUT, t.stderr);
      assert.match(t.stderr, /coordinator/);

      const coord = new Proc('coordinator', process.execPath, [CLI, 'coordinator'], { ...env, METALOOP_LOG_LEVEL: 'info' });
    children.add(coord.pid);
    const log = () => coord.output().join('\n');
      try {
        for (let i = 0; i < 100 && !log().includes('coordinator running'); i++) await new Promise((r) => setTimeout(r, 100));
        const u = await metaloop(['status', 'nope-1'], env);
        assert.equal(u.code, EXIT.UNKNOWN_RUN, u.stderr);
        const l = await metaloop(['list', '--json'], env);
        assert.equal(l.code, EXIT.OK, l.stderr);
        assert.deepEqual(JSON.parse(l.stdout), []);
      } finally {
        await coord.stop();
        assert.equal(coord.exited?.code, 0, 'SIGTERM stops the coordinator cleanly');
        children.delete(coord.pid);
      }
    });
  });

  describe('usage errors: one line naming what was wrong, exit 2, before any connection', () => {
    const unreachable = () => ['--nats', 'nats://127.0.0.1:1'];
    const oneLine = (r: Ran) => {
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at |Usage:|Commands:/);
      assert.equal(r.stdout, '');
    };
    it('a mistyped command names the nearest one', async () => {
      const r = await metaloop(['stauts', 'x']);
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      oneLine(r);
      assert.match(r.stderr, /unknown command 'stauts' \(did you mean status\?\)/);
    });
    it('events --kind with an unknown kind names the valid kinds', async () => {
      const r = await metaloop(['events', 'run-1', '--kind', 'evals', ...unreachable()]);
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      oneLine(r);
      assert.match(r.stderr, /"evals".*step, eval, state, checkpoint/);
    });
    it('a missing spec file says "no such file"', async () => {
      for (const cmd of ['submit', 'local']) {
        const r = await metaloop([cmd, 'examples/nope.yaml', ...unreachable()]);
        assert.equal(r.code, EXIT.USAGE, r.stderr);
        oneLine(r);
        assert.match(r.stderr, /no such file: examples\/nope\.yaml/);
        assert.doesNotMatch(r.stderr, /ENOENT/);
      }
    });
    it('eval of a directory that does not exist says so (not "unknown run")', async () => {
      const r = await metaloop(['eval', 'models/typo', ...unreachable()]);
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      oneLine(r);
      assert.match(r.stderr, /no such directory: models\/typo/);
    });
    it('report --out into a missing directory names the directory', async () => {
      const r = await metaloop(['report', 'run-1', '--out', '/nonexistent/dir/r.html', ...unreachable()]);
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      oneLine(r);
      assert.match(r.stderr, /the directory \/nonexistent\/dir does not exist/);
    });
    it('--workers 1.5 is refused', async () => {
      const r = await metaloop(['local', EXAMPLE, '--workers', '1.5', '--embedded']);
      assert.equal(r.code, EXIT.USAGE, r.stderr);
      oneLine(r);
      assert.match(r.stderr, /--workers expects a whole number >= 1, got "1\.5"/);
    });
  });

  it('local: the --max-params hint names a flag local has, and raising it lets the run start', async () => {
    const r = await metaloop(['local', EXAMPLE, '--embedded', '--max-params', '100', ...SHORT]);
    assert.equal(r.code, EXIT.INVALID_SPEC, r.stderr);
    const flags = [...r.stderr.matchAll(/--[a-z][a-z-]+/g)].map((m) => m[0]);
    assert.ok(flags.includes('--max-params'), r.stderr);
    const help = await metaloop(['local', '--help']);
    for (const f of flags) assert.ok(help.stdout.includes(f), `local's hint names ${f}, which \`local --help\` lacks:\n${help.stdout}`);
    const ok = await metaloop(['local', EXAMPLE, '--embedded', '--max-params', '2000', ...SHORT]);
    assert.equal(ok.code, EXIT.OK, ok.stderr);
  });

  it('local --embedded --json: the last stdout line is the JSON summary', async () => {
    const r = await metaloop(['local', EXAMPLE, '--workers', '2', '--embedded', '--json', ...SHORT]);
    assert.equal(r.code, EXIT.OK, r.stderr);
    const last = r.stdout.trim().split('\n').pop()!;
    const summary = JSON.parse(last) as Record<string, unknown>;
    assert.deepEqual(Object.keys(summary), ['runId', 'status', 'steps', 'seconds', 'metaStepsPerSec', 'tasksPerSec', 'eval']);
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.steps, 6);
    const ev = summary.eval as { tasks: number; innerSteps: number[]; preLoss: number; postLoss: number[] };
    assert.equal(ev.tasks, 5);
    assert.deepEqual(ev.innerSteps, [1, 2]);
    assert.equal(ev.postLoss.length, 2);
    assert.ok(ev.postLoss.every((x) => Number.isFinite(x) && x > 0));
  });
});

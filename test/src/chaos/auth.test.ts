/**
 * Issue 5 acceptance 5 (security) with deploy/nats/nats-test.conf (per-role users and subject
 * permissions): clients without credentials are refused; the CLI role cannot read work or publish
 * results; the CLI without credentials fails with a clear message (exit 6); with the roles'
 * credentials (flags for the CLI, env vars for the processes) a run trains end to end. And a
 * token-only server: every process and the CLI authenticate with METALOOP_NATS_TOKEN.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, subjects, type NatsServer } from '@metaloop/shared';
import { permissionError, Proc, ROOT, SINUSOID, waitFor } from '@metaloop/testing';
import { metaloopCli, sinusoidSets, startCoordinator, startWorker } from '@metaloop/testing/cluster';

const CONF = join(ROOT, 'deploy', 'nats', 'nats-test.conf');
const PASS = { coordinator: 'coordinator-test-password', worker: 'worker-test-password', cli: 'cli-test-password' } as const;
const roleEnv = (role: keyof typeof PASS) => ({ METALOOP_NATS_USER: role, METALOOP_NATS_PASSWORD: PASS[role] });


function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

describe('chaos: authentication and per-role permissions', { timeout: 300_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  const conns: NatsConnection[] = [];
  const describeProcs = () => procs.map((p) => p.tail(12)).join('\n');

  before(async () => {
    nats = await startNatsServer({ configFile: CONF });
  });

  after(async () => {
    for (const c of conns) await c.close().catch(() => {});
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it('refuses a client without credentials: it can neither read work nor publish results', async () => {
    await assert.rejects(connect({ servers: nats.url, reconnect: false }), /authoriz/i);
    await assert.rejects(connect({ servers: nats.url, user: 'worker', pass: 'wrong', reconnect: false }), /authoriz/i);
  });

  it('the CLI role cannot read work nor publish results', async () => {
    // Make sure the streams exist (as the coordinator would).
    const coord = await connect({ servers: nats.url, user: 'coordinator', pass: PASS.coordinator, reconnect: false });
    conns.push(coord);
    const s = subjects();
    const cli = await connect({ servers: nats.url, user: 'cli', pass: PASS.cli, reconnect: false });
    conns.push(cli);
    const readWork = await permissionError(cli, async () => {
      const c = await jetstream(cli).consumers.get(s.workStream, s.workConsumer);
      await c.next({ expires: 1000 });
    });
    assert.match(readWork, /permission|authoriz/i, `reading work must be refused, got: ${readWork || 'success'}`);
    const publishResult = await permissionError(cli, async () => {
      cli.publish(s.results('some-run'), new Uint8Array([1, 2, 3]));
      await cli.flush();
    });
    assert.match(publishResult, /permission/i, `publishing a result must be refused, got: ${publishResult || 'success'}`);
  });

  it('the CLI without credentials exits 6 with a message about credentials', async () => {
    const r = await metaloopCli(['--nats', nats.url, 'list'], { METALOOP_NATS_USER: '', METALOOP_NATS_PASSWORD: '' });
    assert.equal(r.code, 6, `exit code: ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /refused the credentials/i);
    assert.match(r.stderr, /--nats-user|METALOOP_NATS_USER/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  });

  it('with role credentials a run trains end to end; the CLI (flags) only needs the API', async () => {
    const c = await startCoordinator('coordinator', nats.url, { env: roleEnv('coordinator') });
    procs.push(c.proc);
    procs.push(startWorker('aw1', nats.url, { env: roleEnv('worker') }));
    const cliArgs = ['--nats', nats.url, '--nats-user', 'cli', '--nats-password', PASS.cli];
    await waitFor('the coordinator to answer the CLI', 30_000, async () => (await metaloopCli([...cliArgs, 'list'])).code === 0, describeProcs);
    const sets = sinusoidSets(6).flatMap((x) => ['--set', x]);
    const r = await metaloopCli([...cliArgs, 'submit', SINUSOID, ...sets, '--watch', '--json'], {}, 180_000);
    assert.equal(r.code, 0, `submit --watch under auth:\n${r.stdout}\n${r.stderr}\n${describeProcs()}`);
    assert.equal(lastJson(r.stdout).status, 'succeeded');
    // Every read command of the CLI works with the CLI role alone (API verbs + events).
    const runId = String(lastJson(r.stdout).runId);
    const dir = mkdtempSync(join(tmpdir(), 'metaloop-auth-cli-'));
    try {
      for (const args of [['status', runId], ['events', runId], ['workers'], ['report', runId, '--out', join(dir, 'r.html')], ['export', runId, '--out', join(dir, 'm')]]) {
        const x = await metaloopCli([...cliArgs, ...args]);
        assert.equal(x.code, 0, `${args[0]} under the CLI role:\n${x.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('chaos: token authentication for every process and the CLI', { timeout: 300_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  const TOKEN = 'metaloop-test-token-1234';
  const describeProcs = () => procs.map((p) => p.tail(12)).join('\n');

  before(async () => {
    nats = await startNatsServer({ args: ['--auth', TOKEN] });
  });

  after(async () => {
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  it('refuses a missing token (exit 6) and trains with METALOOP_NATS_TOKEN everywhere', async () => {
    const none = await metaloopCli(['--nats', nats.url, 'list']);
    assert.equal(none.code, 6, none.stderr);
    const env = { METALOOP_NATS_TOKEN: TOKEN };
    procs.push((await startCoordinator('coordinator', nats.url, { env })).proc);
    procs.push(startWorker('tw1', nats.url, { env }));
    await waitFor('the coordinator', 30_000, async () => (await metaloopCli(['--nats', nats.url, 'list'], env)).code === 0, describeProcs);
    const sets = sinusoidSets(4).flatMap((x) => ['--set', x]);
    const r = await metaloopCli(['--nats', nats.url, 'submit', SINUSOID, ...sets, '--watch', '--json'], env, 180_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${describeProcs()}`);
    assert.equal(lastJson(r.stdout).status, 'succeeded');
  });
});

/**
 * Issue 5, security: TLS (a private CA, verified by every client) and nkey authentication (a seed
 * file given as METALOOP_NATS_CREDS) for the coordinator, the worker and the CLI. A run trains;
 * the CLI without the CA cannot connect (exit 2), and with the CA but no nkey is refused (exit 6).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nkeys } from '@nats-io/transport-node';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { Proc, SINUSOID, waitFor } from '@metaloop/testing';
import { metaloopCli, sinusoidSets, startCoordinator, startWorker } from '@metaloop/testing/cluster';

function openssl(dir: string, args: string[]): void {
  execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'pipe' });
}

describe('chaos: TLS and nkey authentication for every process and the CLI', { timeout: 300_000 }, () => {
  let dir = '';
  let nats: NatsServer;
  const procs: Proc[] = [];
  const describeProcs = () => procs.map((p) => p.tail(12)).join('\n') + `\n--- nats ---\n${nats?.logTail() ?? ''}`;
  let env: Record<string, string> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'metaloop-tls-'));
    openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=metaloop-test-ca']);
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf']);
    const user = nkeys.createUser();
    const seedFile = join(dir, 'user.nk');
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()) + '\n', { mode: 0o600 });
    const conf = join(dir, 'nats.conf');
    writeFileSync(
      conf,
      [
        `tls { cert_file: "${join(dir, 'server.pem')}", key_file: "${join(dir, 'server-key.pem')}" }`,
        `authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }`,
      ].join('\n') + '\n',
    );
    nats = await startNatsServer({ configFile: conf });
    env = { METALOOP_NATS_CREDS: seedFile, METALOOP_NATS_TLS_CA: join(dir, 'ca.pem') };
  });

  after(async () => {
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the CLI without the CA cannot connect (exit 2); without the nkey it is refused (exit 6)', async () => {
    const noCa = await metaloopCli(['--nats', nats.url, 'list'], { METALOOP_NATS_CREDS: env.METALOOP_NATS_CREDS! });
    assert.equal(noCa.code, 2, `${noCa.stderr}`);
    assert.match(noCa.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1/);
    const noKey = await metaloopCli(['--nats', nats.url, '--nats-tls-ca', env.METALOOP_NATS_TLS_CA!, 'list']);
    assert.equal(noKey.code, 6, `${noKey.stderr}`);
    assert.match(noKey.stderr, /refused the credentials/);
  });

  it('trains a run with TLS + nkey for the coordinator, the worker (env) and the CLI (flags)', async () => {
    procs.push((await startCoordinator('coordinator', nats.url, { env })).proc);
    procs.push(startWorker('kw1', nats.url, { env }));
    const cliArgs = ['--nats', nats.url, '--nats-creds', env.METALOOP_NATS_CREDS!, '--nats-tls-ca', env.METALOOP_NATS_TLS_CA!];
    await waitFor('the coordinator over TLS', 30_000, async () => (await metaloopCli([...cliArgs, 'list'])).code === 0, describeProcs);
    const sets = sinusoidSets(4).flatMap((x) => ['--set', x]);
    const r = await metaloopCli([...cliArgs, 'submit', SINUSOID, ...sets, '--watch', '--json'], {}, 180_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${describeProcs()}`);
    const lines = r.stdout.trim().split('\n');
    assert.equal((JSON.parse(lines[lines.length - 1]!) as { status: string }).status, 'succeeded');
  });
});

/**
 * Issue 16 item 9, safe defaults: the worker processes `metaloop local` starts serve their metrics
 * on 127.0.0.1 only, while a long-running `metaloop-worker` (and `metaloop coordinator`) keeps
 * 0.0.0.0 so Prometheus can scrape a container, and says so in `--help`. Checked on real worker
 * processes against a real nats-server: the address in the kernel's table of listening sockets
 * (/proc/net/tcp), not only what the process says.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { workerArgs } from '@metaloop/cli';
import { startNatsServer, validateSpec, type NatsServer } from '@metaloop/shared';
import { Proc, ROOT, waitFor } from '@metaloop/testing';

const METALOOP = join(ROOT, 'cli/dist/cli.js');
const WORKER = join(ROOT, 'worker/dist/cli.js');

/** The local IPv4 address (dotted) of the listening TCP socket on `port`, from /proc/net/tcp. */
function listeningAddress(port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (!local || state !== '0A') continue; // 0A = TCP_LISTEN
    const [addr, p] = local.split(':');
    if (p !== hexPort || !addr) continue;
    // Little-endian hex: 0100007F = 127.0.0.1.
    return [3, 2, 1, 0].map((i) => parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join('.');
  }
  return undefined;
}

/** Start a worker with `args`; resolve with the host and port its metrics endpoint logs. */
async function startWorker(nats: NatsServer, args: readonly string[], procs: Proc[], env: NodeJS.ProcessEnv = {}): Promise<{ host: string; port: number }> {
  const w = new Proc(`worker ${args.join(' ')}`, process.execPath, [WORKER, '--nats', nats.url, '--backend', 'cpu', ...args], {
    METALOOP_LOG_FORMAT: 'json',
    METALOOP_LOG_LEVEL: 'info',
    ...env,
  });
  procs.push(w);
  return waitFor(
    `${w.name} to serve its metrics`,
    60_000,
    () => {
      for (const line of w.output()) {
        if (!line.startsWith('{')) continue;
        const l = JSON.parse(line) as { msg?: string; host?: string; port?: number };
        if (l.msg === 'serving /metrics, /healthz, /readyz' && l.host && l.port) return { host: l.host, port: l.port };
      }
      return undefined;
    },
    () => w.output().join('\n'),
    () => w.exitReason(),
  );
}

describe('metrics endpoint address: loopback for metaloop local, every interface for long-running processes', { timeout: 180_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];

  before(async () => {
    nats = await startNatsServer();
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await nats?.stop();
  });

  it('workers started with the arguments of metaloop local listen on 127.0.0.1 only', async () => {
    const args = workerArgs(validateSpec({ name: 'bind', seed: 1, task: { family: 'sinusoid' }, model: { kind: 'mlp', hidden: [4] }, algorithm: { kind: 'maml' }, outer: { metaBatch: 2, shardSize: 1, steps: 1 } }));
    const m = await startWorker(nats, args, procs);
    assert.equal(m.host, '127.0.0.1');
    assert.equal(listeningAddress(m.port), '127.0.0.1', `port ${m.port} in /proc/net/tcp`);
  });

  it('a worker started by hand (no --metrics-host) listens on 0.0.0.0', async () => {
    const m = await startWorker(nats, ['--metrics-port', '0'], procs, { METALOOP_METRICS_HOST: undefined });
    assert.equal(m.host, '0.0.0.0');
    assert.equal(listeningAddress(m.port), '0.0.0.0', `port ${m.port} in /proc/net/tcp`);
  });

  it('METALOOP_METRICS_HOST=127.0.0.1 does what --metrics-host 127.0.0.1 does', async () => {
    const m = await startWorker(nats, ['--metrics-port', '0'], procs, { METALOOP_METRICS_HOST: '127.0.0.1' });
    assert.equal(listeningAddress(m.port), '127.0.0.1', `port ${m.port} in /proc/net/tcp`);
  });

  for (const [name, command] of [
    ['metaloop coordinator', [METALOOP, 'coordinator', '--help']],
    ['metaloop-worker', [WORKER, '--help']],
  ] as const) {
    it(`${name} --help says the metrics endpoint listens on every interface (0.0.0.0) by default, for containers`, () => {
      const r = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const help = r.stdout.replace(/\s+/g, ' ');
      assert.match(help, /--metrics-host <host> [^-]*0\.0\.0\.0 = every interface[^-]*container[^-]*127\.0\.0\.1 = this host only.*\(default: "0\.0\.0\.0"/, help);
    });
  }
});

/**
 * Issue 17: the coordinator server (`metaloop-coordinator`, and `metaloop coordinator` through the
 * CLI) and the light client commands do not load TensorFlow.js, the
 * worker package or the Kubernetes client. The processes are the real bin started with
 * `node --import load-recorder.js` (see support/load-recorder.ts: an ESM loader hook records every
 * module URL the ESM loader loads, and require.cache is dumped for the CommonJS files that
 * CommonJS packages require — Node 20 has both loaders, and @tensorflow/* is mostly CommonJS). The
 * coordinator runs against a real nats-server on a loopback port; once its /readyz answers 200 it
 * is sent SIGUSR2, which dumps the list; `--help` and `status` dump it at exit.
 * A control proves the recorder sees @tensorflow when it is loaded (importing @metaloop/worker).
 * `status` stands for the light client commands (submit, list, watch, events, workers, pause,
 * resume, cancel): they share cli.ts's static module graph and their actions import nothing more.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import { freePort, httpStatus, METALOOP, METALOOP_COORDINATOR, Proc, ROOT, waitFor } from '@metaloop/testing';
import { loadedModules } from '@metaloop/testing/load-recorder';

const RECORDER = import.meta.resolve('@metaloop/testing/load-recorder');

/** Module URL prefixes that must not be loaded, each with what it is. */
const HEAVY: ReadonlyArray<[string, string]> = [
  ['@tensorflow', '/node_modules/@tensorflow/'],
  ['@metaloop/worker', pathToFileURL(join(ROOT, 'worker')).href + '/'],
  ['@metaloop/worker', '/node_modules/@metaloop/worker/'],
  ['@kubernetes/client-node', '/node_modules/@kubernetes/client-node/'],
];

function heavyIn(modules: readonly string[]): string[] {
  return modules.filter((m) => HEAVY.some(([, p]) => m.includes(p))).map((m) => HEAVY.find(([, p]) => m.includes(p))![0] + ': ' + m);
}

/** Fails naming the packages loaded and the first modules of each (the full list runs to hundreds). */
function assertNoHeavy(modules: readonly string[], what: string): void {
  const heavy = heavyIn(modules);
  const names = [...new Set(heavy.map((h) => h.split(': ')[0]))];
  assert.equal(heavy.length, 0, `${what} loaded ${heavy.length} modules of ${names.join(', ')}; first ones:\n${heavy.slice(0, 12).join('\n')}`);
}

describe('metaloop without TensorFlow: coordinator, --help and the light client commands', { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let dir: string;
  const procs: Proc[] = [];

  before(async () => {
    nats = await startNatsServer();
    dir = mkdtempSync(join(tmpdir(), 'metaloop-no-tfjs-'));
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Run `node --import recorder <args>` to its end; the recorded modules and the result. */
  function record(name: string, args: readonly string[]): { modules: string[]; status: number | null; output: string } {
    const base = join(dir, name);
    const r = spawnSync(process.execPath, ['--import', RECORDER, ...args], {
      env: { ...process.env, METALOOP_LOAD_RECORD: base },
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    return { modules: loadedModules(base), status: r.status, output: `${r.stdout}\n${r.stderr}` };
  }

  it('the recorder sees @tensorflow and @metaloop/worker when they are loaded (control)', () => {
    const r = record('control', ['--input-type=module', '-e', "await import('@metaloop/worker');"]);
    assert.equal(r.status, 0, r.output);
    const heavy = heavyIn(r.modules).join('\n');
    assert.match(heavy, /^@tensorflow: /m, `recorded:\n${r.modules.slice(0, 40).join('\n')}`);
    assert.match(heavy, /^@metaloop\/worker: /m);
  });

  /** Start `args` (a coordinator) under the recorder, wait for /readyz, dump the list (SIGUSR2). */
  async function readyCoordinator(name: string, args: readonly string[]): Promise<{ proc: Proc; modules: string[] }> {
    const base = join(dir, name);
    const metricsPort = await freePort();
    const proc = new Proc(name, process.execPath, ['--import', RECORDER, ...args, '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1'], {
      METALOOP_LOAD_RECORD: base,
      METALOOP_LOG_LEVEL: 'info',
      METALOOP_K8S_SCALER: 'false',
    });
    procs.push(proc);
    await waitFor(
      'the coordinator to be ready (/readyz 200)',
      90_000,
      async () => (await httpStatus(`http://127.0.0.1:${metricsPort}/readyz`)) === 200,
      () => proc.tail(),
      () => proc.exitReason(),
    );
    process.kill(proc.pid, 'SIGUSR2');
    await waitFor('the module list (SIGUSR2)', 10_000, () => existsSync(`${base}.cjs`), () => proc.tail(), () => proc.exitReason());
    const modules = loadedModules(base);
    // The recorder saw the coordinator's own modules and NATS: the list is the real one.
    assert.ok(modules.some((m) => m.endsWith('/coordinator/dist/coordinator.js')), `recorded:\n${modules.join('\n')}`);
    assert.ok(modules.some((m) => m.includes('/node_modules/@nats-io/')), 'NATS client recorded');
    return { proc, modules };
  }

  it('metaloop-coordinator (the server\'s bin), once ready, has loaded none of @tensorflow, @metaloop/worker, @kubernetes/client-node', async () => {
    const { proc, modules } = await readyCoordinator('metaloop-coordinator', [METALOOP_COORDINATOR, '--nats', nats.url]);
    assertNoHeavy(modules, 'metaloop-coordinator (ready)');
    assert.ok(!modules.some((m) => m.includes('/cli/dist/')), 'the server loads nothing of @metaloop/cli');
    await proc.stop();
  });

  it('metaloop coordinator, once ready, has loaded none of @tensorflow, @metaloop/worker, @kubernetes/client-node', async () => {
    const { proc, modules } = await readyCoordinator('coordinator', [METALOOP, '--nats', nats.url, 'coordinator']);
    assertNoHeavy(modules, 'metaloop coordinator (ready)');

    // A light client command against this coordinator: an unknown run (exit 4) after a real round trip.
    const status = record('status', [METALOOP, '--nats', nats.url, 'status', 'no-such-run']);
    assert.equal(status.status, 4, status.output);
    assert.match(status.output, /no-such-run/);
    assertNoHeavy(status.modules, 'metaloop status');
    await proc.stop();
  });

  it('metaloop --help and metaloop-coordinator --help load none of them', () => {
    const r = record('help', [METALOOP, '--help']);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /coordinator/);
    assertNoHeavy(r.modules, 'metaloop --help');
    const c = record('coordinator-help', [METALOOP_COORDINATOR, '--help']);
    assert.equal(c.status, 0, c.output);
    assert.match(c.output, /--metrics-port/);
    assertNoHeavy(c.modules, 'metaloop-coordinator --help');
  });

  it('@metaloop/coordinator declares and imports neither @metaloop/worker nor @tensorflow/*; @kubernetes/client-node only in scaler.ts', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'coordinator/package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const deps = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies });
    assert.deepEqual(deps.filter((d) => d === '@metaloop/worker' || d === '@metaloop/cli' || d.startsWith('@tensorflow/')), []);
    const src = join(ROOT, 'coordinator/src');
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 10, `coordinator sources: ${files.join(', ')}`);
    for (const f of files) {
      const text = readFileSync(join(src, f), 'utf8');
      assert.doesNotMatch(text, /(?:from |import |import\()'(?:@metaloop\/(?:worker|cli)'|@tensorflow\/)/, f);
      if (f !== 'scaler.ts') assert.doesNotMatch(text, /(?:from |import |import\()'@kubernetes\/client-node'/, `${f}: the Kubernetes client is loaded by scaler.ts alone, dynamically`);
    }
  });
});

/**
 * `metaloop local`: a coordinator and N workers with one call. On a real nats-server (the one at
 * `natsUrl`, or one started on a free loopback port when `nats-server` is installed) with worker
 * child processes, or on an InProcTransport with in-process workers (`embedded`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  findNatsServer,
  InProcTransport,
  startNatsServer,
  metaloop,
  subjects,
  connectNats,
  DEFAULT_NATS_URL,
  natsFlagsToEnv,
  natsOptionsFromFlags,
  type Logger,
  type NatsFlags,
  type NatsServer,
  type RunSpec,
  type Transport,
} from '@metaloop/shared';
import { ApiClient } from '@metaloop/client';
import { Coordinator, type RunLimits, CoordinatorError, type DispatchMode } from '@metaloop/coordinator';

export interface LocalOptions {
  /** The validated spec (overrides applied); submitted as JSON (which is YAML). */
  readonly spec: RunSpec;
  readonly source: string;
  readonly workers: number;
  /** Use this NATS server (the --nats* flags) instead of starting one. */
  readonly nats?: NatsFlags | undefined;
  /** Run everything in this process on an InProcTransport. */
  readonly embedded?: boolean;
  /** How shards reach the workers (dispatch.ts). Default `direct`. */
  readonly dispatch?: DispatchMode;
  readonly prefix: string;
  readonly logger: Logger;
  /** Called with the run record about every `pollMs`. */
  readonly onRecord?: (record: metaloop.RunRecord) => void;
  readonly pollMs?: number;
  /** Abort (Ctrl-C): stop waiting, cancel the run, clean up. */
  readonly signal?: AbortSignal;
  /** Called with every event the coordinator publishes (benchmarks time the steps by them). */
  readonly onEvent?: (event: metaloop.Event) => void;
  /** Called with every worker heartbeat (which backend, device and pid each worker runs on). */
  readonly onHeartbeat?: (heartbeat: metaloop.Heartbeat) => void;
  /** The coordinator's run-spec limits (e.g. a larger maxParams). */
  readonly limits?: RunLimits | undefined;
  /** θ₀ the spec names by sha256 (`model.weights`, a Keras file's weights): uploaded before the submit. */
  readonly initWeights?: Uint8Array | undefined;
  /** More environment for worker process `index` (0-based; benchmarks: one slow worker). */
  readonly workerEnv?: (index: number) => Readonly<Record<string, string>>;
}

export interface LocalResult {
  readonly record: metaloop.RunRecord;
  readonly mode: 'nats' | 'embedded';
  readonly address: string;
  readonly wallSeconds: number;
}


/** Path of the `metaloop-worker` bin (worker/dist/cli.js). */
export function workerBinPath(): string {
  const entry = fileURLToPath(import.meta.resolve('@metaloop/worker'));
  const bin = fileURLToPath(new URL('./cli.js', new URL(`file://${entry}`)));
  if (!existsSync(bin)) throw new CoordinatorError(`metaloop-worker not found at ${bin}: build the worker package (npm run build)`);
  return bin;
}

/**
 * Arguments of the worker processes `metaloop local` starts: metrics on any free port (several
 * workers on one host) of the loopback interface only (a local run is not scraped from other
 * hosts; the long-running `metaloop-worker` keeps 0.0.0.0 for containers), and the spec's
 * `workers.backend` as `--backend` ('any': the workers' default chain, METALOOP_BACKEND included).
 */
export function workerArgs(spec: RunSpec): string[] {
  const backend = spec.workers.backend;
  return ['--metrics-port', '0', '--metrics-host', '127.0.0.1', ...(backend === 'any' ? [] : ['--backend', backend])];
}

/**
 * Worker processes die with this one even when it ends without its clean-up (process.exit, e.g.
 * `metaloop local … | head` closing the pipe), as the nats-server it started does.
 */
const liveWorkerProcesses = new Set<ChildProcess>();
let exitHook = false;
function killOnExit(child: ChildProcess): void {
  if (!exitHook) process.once('exit', () => liveWorkerProcesses.forEach((c) => c.kill('SIGKILL')));
  exitHook = true;
  liveWorkerProcesses.add(child);
  child.once('exit', () => liveWorkerProcesses.delete(child));
}

function hasNatsServer(): boolean {
  try {
    findNatsServer();
    return true;
  } catch {
    return false;
  }
}

/**
 * Wait until `count` workers send heartbeats (their tfjs backend is loaded), so the run's clock
 * measures training rather than start-up; go on with a warning after `timeoutMs`.
 */
async function waitForWorkers(
  transport: Transport,
  prefix: string,
  count: number,
  timeoutMs: number,
  log: Logger,
  signal?: AbortSignal,
): Promise<void> {
  const seen = new Set<string>();
  let done = () => {};
  const all = new Promise<void>((r) => (done = r));
  const sub = transport.subscribe(subjects(prefix).heartbeat(), (data) => {
    try {
      const hb = metaloop.Heartbeat.decode(data);
      if (hb.workerId && hb.state !== 'draining') seen.add(hb.workerId);
      if (seen.size >= count) done();
    } catch {
      // not a heartbeat
    }
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  const aborted = new Promise<void>((r) => signal?.addEventListener('abort', () => r(), { once: true }));
  try {
    const first = await Promise.race([all, timeout, aborted]);
    if (first === 'timeout') log.warn('not every worker reported in time; starting anyway', { expected: count, seen: seen.size });
    signal?.throwIfAborted();
  } finally {
    clearTimeout(timer);
    await sub.close();
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Subscribe `onEvent` / `onHeartbeat` (when given) for the whole local run. */
function observe(transport: Transport, o: LocalOptions, cleanups: (() => Promise<void>)[]): void {
  const s = subjects(o.prefix);
  const hooks: [string, ((data: Uint8Array) => void) | undefined][] = [
    [s.eventsAll(), o.onEvent && ((d) => o.onEvent?.(metaloop.Event.decode(d)))],
    [s.heartbeat(), o.onHeartbeat && ((d) => o.onHeartbeat?.(metaloop.Heartbeat.decode(d)))],
  ];
  for (const [subject, fn] of hooks) {
    if (!fn) continue;
    const sub = transport.subscribe(subject, (data) => {
      try {
        fn(data);
      } catch (err) {
        o.logger.warn('an observer callback failed', { subject, error: String(err) });
      }
    });
    cleanups.push(() => sub.close());
  }
}

export async function runLocal(o: LocalOptions): Promise<LocalResult> {
  const started = Date.now();
  const log = o.logger;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse().splice(0)) {
      await fn().catch((err: unknown) => log.warn('cleanup step failed', { error: String(err) }));
    }
  };
  let stopping = false;
  const useNats = !o.embedded && (o.nats !== undefined || hasNatsServer());
  const backend = o.spec.workers.backend;
  try {
    let transport: Transport;
    let address: string;
    if (useNats) {
      let settings = o.nats;
      if (!settings) {
        const server: NatsServer = await startNatsServer();
        cleanups.push(() => server.stop());
        settings = { nats: server.url };
        log.info('started nats-server', { url: server.url, pid: server.pid });
      }
      const flags: NatsFlags = { ...settings, prefix: o.prefix };
      transport = await connectNats({ ...natsOptionsFromFlags(flags, {}), name: 'metaloop-local', logger: log });
      cleanups.push(() => transport.close());
      observe(transport, o, cleanups);
      address = settings.nats ?? DEFAULT_NATS_URL;
      const bin = workerBinPath();
      for (let i = 0; i < o.workers; i++) {
        // Quiet logs unless asked for.
        const child = spawn(process.execPath, [bin, ...workerArgs(o.spec)], {
          env: {
            ...process.env,
            ...natsFlagsToEnv(flags),
            METALOOP_WORKER_ID: `local-${i + 1}`,
            METALOOP_DISPATCH: o.dispatch ?? 'direct',
            METALOOP_LOG_LEVEL: process.env.METALOOP_LOG_LEVEL ?? 'warn',
            ...o.workerEnv?.(i),
          },
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        killOnExit(child);
        child.on('exit', (code, sig) => {
          if (!stopping) log.warn('worker process exited', { worker: i + 1, pid: child.pid, code, signal: sig });
        });
        cleanups.push(() => stopChild(child));
      }
      log.info('started worker processes', { count: o.workers, backend });
      await waitForWorkers(transport, o.prefix, o.workers, 60_000, log, o.signal);
    } else {
      const inproc = await InProcTransport.create({ logger: log.child('transport') });
      transport = inproc;
      cleanups.push(() => inproc.close());
      observe(inproc, o, cleanups);
      address = inproc.address;
      const { Worker } = await import('@metaloop/worker');
      for (let i = 0; i < o.workers; i++) {
        const wt = inproc.connect();
        cleanups.push(() => wt.close());
        const worker = await Worker.create({
          transport: wt,
          id: `local-${i + 1}`,
          prefix: o.prefix,
          logger: log.child(`worker-${i + 1}`),
          dispatch: o.dispatch ?? 'direct',
          ...(backend === 'any' ? {} : { backend }),
        });
        const running = worker.run().catch((err: unknown) => log.error('worker stopped', { worker: i + 1, error: String(err) }));
        cleanups.push(async () => {
          await worker.close();
          await running;
        });
      }
      log.info('started in-process workers', { count: o.workers, backend });
    }

    const coordinator = await Coordinator.create({ transport, logger: log.child('coordinator'), prefix: o.prefix, resume: false, dispatch: o.dispatch ?? 'direct', ...(o.limits ? { limits: o.limits } : {}) });
    const serving = coordinator.run();
    cleanups.push(async () => {
      await coordinator.close();
      await serving.catch(() => {});
    });
    await Promise.race([coordinator.ready(), serving]);
    const client = new ApiClient({ transport, prefix: o.prefix });
    if (o.initWeights) await client.upload(o.initWeights, { kind: 'init-weights' });
    const submitted = await client.submit(JSON.stringify(o.spec), o.source);
    const runId = submitted.runId;
    log.info('run submitted', { run: runId, mode: useNats ? 'nats' : 'embedded', address });
    const onAbort = () => {
      client.cancel(runId).catch(() => {});
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const record = await client.waitFor(runId, {
        pollMs: o.pollMs ?? 1000,
        ...(o.onRecord ? { onRecord: o.onRecord } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      return { record, mode: useNats ? 'nats' : 'embedded', address, wallSeconds: (Date.now() - started) / 1000 };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    stopping = true;
    await cleanup();
  }
}

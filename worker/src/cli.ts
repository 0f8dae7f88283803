#!/usr/bin/env node
/**
 * metaloop-worker: connect to NATS, pick a tfjs backend, compute shards until SIGINT/SIGTERM.
 * Exit codes: 0 after a signal (graceful close), 2 when NATS cannot be reached (or refuses the
 * credentials), 1 for any other startup error. Errors are one line, never a stack trace.
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  ConnectionError,
  createLogger,
  DEFAULT_WORKER_METRICS_PORT,
  NATS_FLAG_SPECS,
  natsOptionsFromFlags,
  connectNats,
  parseMetricsPort,
  startObservabilityServer,
  transportReadiness,
  type ObservabilityServer,
  PermissionError,
  type LogLevel,
  type NatsTransportOptions,
  type WorkerTransport,
} from '@metaloop/shared';
import { BACKEND_PREFERENCES, type BackendPreference } from './backend.js';
import { DATA_DIR_ENV } from './data/data-dir.js';
import { describeGpuLine } from './gpu.js';
import { connectWithRetry } from './connect-retry.js';
import { createWorkerObservability } from './observe.js';
import { WORKER_VERSION } from './options.js';
import { runSelfTest } from './self-test.js';
import { Worker } from './worker.js';

interface CliOptions {
  nats?: string;
  id?: string;
  prefix?: string;
  backend?: BackendPreference;
  heartbeatMs?: number;
  dispatch?: 'queue' | 'direct';
  slowShardMs?: number;
  dataDir?: string;
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  logLevel?: LogLevel;
  metricsPort: number;
  metricsHost: string;
  selfTest?: boolean;
  selfTestShards?: number;
  selfTestTasks?: number;
  requireGpu?: boolean;
  natsWait: number;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of milliseconds >= 0');
  return n;
}

/** --nats, --prefix, --nats-user … --nats-tls-key, as every CLI has them (NATS_FLAG_SPECS). */
function withNatsFlags(cmd: Command): Command {
  for (const f of NATS_FLAG_SPECS) {
    const option = new Option(f.flags, f.description).env(f.env);
    cmd.addOption(f.default === undefined ? option : option.default(f.default));
  }
  return cmd;
}

function program(): Command {
  return withNatsFlags(
    new Command('metaloop-worker')
      .description('Metaloop worker: computes MAML shards from the work queue on the best available tfjs backend')
      .version(WORKER_VERSION),
  )
    .addOption(new Option('--id <id>', 'worker id in heartbeats and results (default: <hostname>-<pid>-<random hex>)').env('METALOOP_WORKER_ID'))
    .addOption(new Option('--backend <name>', 'required tfjs backend (default: any = the first that loads of tensorflow-gpu, tensorflow, wasm, cpu)').choices(BACKEND_PREFERENCES).env('METALOOP_BACKEND'))
    .addOption(new Option('--heartbeat-ms <ms>', 'heartbeat period (default: 2000)').argParser(positiveInt))
    .addOption(
      new Option('--dispatch <mode>', "where shards come from: direct (assigned over core NATS) or queue (JetStream WorkQueue); the coordinator's mode (default: direct)")
        .choices(['direct', 'queue'])
        .env('METALOOP_DISPATCH'),
    )
    .addOption(
      new Option('--slow-shard-ms <ms>', 'simulate a slow device: hold every shard this long before computing it (chaos tests)')
        .argParser(nonNegativeInt)
        .env('METALOOP_WORKER_SLOW_SHARD_MS')
        .hideHelp(),
    )
    .addOption(
      new Option('--data-dir <dir>', "where the relative dataset paths of run specs point, and where this worker's packed datasets are listed from for its heartbeats (default: the working directory)").env(
        DATA_DIR_ENV,
      ),
    )
    .addOption(new Option('--log-level <level>', 'log level (default: info)').choices(['debug', 'info', 'warn', 'error']).env('METALOOP_LOG_LEVEL'))
    .addOption(
      new Option('--metrics-port <port>', '/metrics, /healthz, /readyz port (0 = any free port, -1 = off)')
        .default(DEFAULT_WORKER_METRICS_PORT)
        .argParser(metricsPort),
    )
    .addOption(
      new Option(
        '--metrics-host <host>',
        'interface of the metrics endpoint: 0.0.0.0 = every interface, so Prometheus can scrape the container or pod; 127.0.0.1 = this host only (what `metaloop local` gives its workers)',
      )
        .env('METALOOP_METRICS_HOST')
        .default('0.0.0.0'),
    )
    .addOption(new Option('--self-test', 'check this node and exit (no NATS): backend, device, GPU, a timed Conv4 MAML shard, tasks/s; exit 0 when it works (docs/gpu.md)'))
    .addOption(new Option('--self-test-shards <n>', 'timed shards of the self-test (after one warm-up shard)').default(3).argParser(positiveInt))
    .addOption(new Option('--self-test-tasks <n>', 'tasks per self-test shard').default(4).argParser(positiveInt))
    .addOption(new Option('--require-gpu', 'with --self-test: fail unless the backend computes on a GPU'))
    .addOption(
      new Option('--nats-wait <seconds>', 'keep retrying an unreachable NATS at start-up this long, with back-off (0 = give up at once, exit 2)')
        .env('METALOOP_NATS_WAIT')
        .argParser(waitSeconds)
        .default(Number.POSITIVE_INFINITY, 'forever'),
    )
    .addHelpText(
      'after',
      `
Exit codes: 0 after SIGINT/SIGTERM, 1 startup error, 2 NATS refused the credentials (or stayed unreachable for --nats-wait).

Examples:
  $ metaloop-worker --nats nats://127.0.0.1:4222 --id gpu0
  $ METALOOP_NATS_URL=nats://nats:4222 metaloop-worker --backend tensorflow --metrics-port 9401
  $ metaloop-worker --self-test          # check this node: backend, device, GPU, a timed Conv4 shard`,
    );
}

/** Seconds >= 0, or `forever`. */
function waitSeconds(value: string): number {
  if (value === 'forever') return Number.POSITIVE_INFINITY;
  const n = Number(value);
  if (!(n >= 0)) throw new InvalidArgumentError('expected seconds >= 0, or "forever"');
  return n;
}

/** -1 = no endpoint (commander turns a parser's `null` into '', so -1 is the "off" value). */
function metricsPort(value: string): number {
  try {
    return parseMetricsPort(value, DEFAULT_WORKER_METRICS_PORT) ?? -1;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function natsOptions(o: CliOptions, id: string | undefined): NatsTransportOptions {
  return {
    ...natsOptionsFromFlags(o, process.env),
    name: `metaloop-worker${id ? `-${id}` : ''}`,
    // The coordinator owns the work consumer's lease and MaxDeliver; a worker never changes them.
    manageConsumers: false,
  };
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const cmd = program();
  cmd.parse([...argv]);
  const o = cmd.opts<CliOptions>();
  if (o.dataDir) process.env[DATA_DIR_ENV] = resolve(o.dataDir);
  const logger = createLogger('worker', o.logLevel ? { level: o.logLevel } : {});
  if (o.requireGpu && !o.selfTest) {
    process.stderr.write('metaloop-worker: --require-gpu only applies to --self-test\n');
    return 1;
  }
  if (o.selfTest) {
    const report = await runSelfTest({
      ...(o.backend ? { backend: o.backend } : {}),
      shards: o.selfTestShards ?? 3,
      tasksPerShard: o.selfTestTasks ?? 4,
      requireGpu: o.requireGpu === true,
      // Warnings (e.g. GPUs present but unused) go to stderr; the report itself to stdout.
      logger: createLogger('worker', { level: o.logLevel ?? 'warn' }),
    });
    return report.ok ? 0 : 1;
  }
  let transport: WorkerTransport;
  const options = natsOptions(o, o.id);
  // A signal while waiting for NATS ends the wait (exit 0, as after a graceful close).
  const waiting = new AbortController();
  const stopWaiting = () => waiting.abort(new Error('stopped while waiting for NATS'));
  process.once('SIGINT', stopWaiting);
  process.once('SIGTERM', stopWaiting);
  try {
    transport = await connectWithRetry(() => connectNats({ ...options, logger: logger.child('nats') }), {
      logger,
      waitMs: o.natsWait * 1000,
      signal: waiting.signal,
      target: String(options.servers ?? 'nats://127.0.0.1:4222'),
    });
  } catch (err) {
    if (waiting.signal.aborted) return 0;
    process.stderr.write(`metaloop-worker: ${oneLine(err)}\n`);
    return err instanceof ConnectionError || err instanceof PermissionError ? 2 : 1;
  } finally {
    process.removeListener('SIGINT', stopWaiting);
    process.removeListener('SIGTERM', stopWaiting);
  }
  const observability = createWorkerObservability(o.id);
  let worker: Worker | undefined;
  let metricsServer: ObservabilityServer | undefined;
  try {
    if (o.metricsPort >= 0) {
      const serve = (port: number) =>
        startObservabilityServer({
          port,
          host: o.metricsHost,
          registry: observability.registry,
          logger: logger.child('metrics'),
          ready: transportReadiness(transport, [['tfjs backend not loaded yet', () => worker?.state === 'running']]),
        });
      try {
        metricsServer = await serve(o.metricsPort);
      } catch (err) {
        // Several workers on one host (metaloop local, tests) all default to 9401: the default
        // falls back to a free port; a port asked for explicitly must be served or nothing starts.
        if (cmd.getOptionValueSource('metricsPort') !== 'default') throw err;
        logger.warn('default metrics port busy; serving on a free port', { port: o.metricsPort, error: oneLine(err) });
        metricsServer = await serve(0);
      }
    }
    worker = await Worker.create({
      transport,
      logger,
      metrics: observability.metrics,
      ...(o.id ? { id: o.id } : {}),
      ...(o.prefix ? { prefix: o.prefix } : {}),
      ...(o.backend ? { backend: o.backend } : {}),
      ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
      ...(o.dispatch ? { dispatch: o.dispatch } : {}),
      ...(o.slowShardMs ? { slowShardMs: o.slowShardMs } : {}),
    });
  } catch (err) {
    process.stderr.write(`metaloop-worker: ${oneLine(err)}\n`);
    await metricsServer?.close();
    await transport.close().catch(() => undefined);
    return 1;
  }
  const running = worker;
  observability.registry.setDefaultLabels({ worker: running.id });
  logger.info('worker ready', { id: worker.id, backend: worker.backend.name, device: worker.backend.device, gpu: describeGpuLine(worker.gpu), nats: transport.address });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn('second signal: exiting now', { signal: sig });
      process.exit(130);
    }
    logger.info('shutting down', { signal: sig });
    void running.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  try {
    await running.run();
  } catch (err) {
    logger.error('worker stopped', { error: oneLine(err) });
    code = 1;
  }
  await running.close();
  await metricsServer?.close();
  await transport.close().catch((err: unknown) => logger.warn('closing NATS failed', { error: oneLine(err) }));
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`metaloop-worker: ${oneLine(err)}\n`);
    process.exit(1);
  },
);

/**
 * The coordinator server's command line: its flags and what it runs. Two ways in, one code path:
 * the bin `metaloop-coordinator` (cli.ts: these flags on the root command) and `metaloop
 * coordinator` of the user's CLI (@metaloop/cli adds the same command as a subcommand, in-process).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  connectNats,
  DEFAULT_COORDINATOR_METRICS_PORT,
  DEFAULT_LEASE_MS,
  natsOptionsFromFlags,
  parseMetricsPort,
  startObservabilityServer,
  transportReadiness,
  type ObservabilityServer,
} from '@metaloop/shared';
import { Coordinator } from '../coordinator.js';
import { DEFAULT_RUN_LIMITS } from '../coordinator-options.js';
import { CoordinatorObservability } from '../observe.js';
import { cliLogger, type GlobalOptions } from '@metaloop/client';
import { addScalerOptions, startScaler, type ScalerFlags } from './scaler.js';

/** Flags of the coordinator server (`metaloop-coordinator`, `metaloop coordinator`). */
export interface CoordinatorFlags extends ScalerFlags {
  resultTimeoutMs?: number;
  leaseMs: number;
  maxDeliver: number;
  speculativeFactor: number;
  speculativeMinMs: number;
  dispatch: 'queue' | 'direct';
  maxInFlight: number;
  maxParams: number;
  maxMetaBatch: number;
  maxSteps: number;
  metricsPort: number;
  metricsHost: string;
}

/** The server's flags (the scaler's included) on `cmd`. */
export function addCoordinatorFlags(cmd: Command): Command {
  cmd
    .addOption(new Option('--result-timeout-ms <ms>', 're-publish a shard after this long without a result (default lease × (max-deliver + 1))').argParser(Number))
    .addOption(new Option('--lease-ms <ms>', 'work lease (JetStream AckWait); workers send in-progress acks within it').env('METALOOP_LEASE_MS').argParser(Number).default(DEFAULT_LEASE_MS))
    .addOption(new Option('--max-deliver <n>', 'deliveries of a shard before it fails its run (JetStream MaxDeliver)').env('METALOOP_MAX_DELIVER').argParser(Number).default(5))
    .addOption(
      new Option('--dispatch <mode>', 'how shards reach workers: direct (core NATS to live workers, one round trip) or queue (JetStream WorkQueue, for workers behind unreliable links); workers need the same')
        .choices(['direct', 'queue'])
        .env('METALOOP_DISPATCH')
        .default('direct'),
    )
    .addOption(new Option('--speculative-factor <x>', 'speculative copy of a straggling shard after x × the median shard time (0 = off)').argParser(Number).default(3))
    .addOption(new Option('--speculative-min-ms <ms>', 'never speculate on a shard younger than this').argParser(Number).default(2000))
    .addOption(new Option('--max-in-flight <n>', 'shards in flight over all runs, shared fairly by priority (0 = 2 per live worker, at least 8)').argParser(Number).default(0))
    .addOption(new Option('--max-params <n>', 'refuse run specs whose model has more parameters').argParser(Number).default(DEFAULT_RUN_LIMITS.maxParams))
    .addOption(new Option('--max-meta-batch <n>', 'refuse run specs with a larger outer.metaBatch').argParser(Number).default(DEFAULT_RUN_LIMITS.maxMetaBatch))
    .addOption(new Option('--max-steps <n>', 'refuse run specs with more outer.steps').argParser(Number).default(DEFAULT_RUN_LIMITS.maxSteps))
    .addOption(
      new Option('--metrics-port <port>', '/metrics, /healthz, /readyz port (0 = any free port, -1 = off)')
        .default(DEFAULT_COORDINATOR_METRICS_PORT)
        .argParser((v: string) => {
          try {
            // -1 = no endpoint (commander turns a parser's `null` into '').
            return parseMetricsPort(v, DEFAULT_COORDINATOR_METRICS_PORT) ?? -1;
          } catch (e) {
            throw new InvalidArgumentError((e as Error).message);
          }
        }),
    )
    .addOption(
      new Option('--metrics-host <host>', 'interface of the metrics endpoint: 0.0.0.0 = every interface, so Prometheus can scrape the container or pod; 127.0.0.1 = this host only')
        .env('METALOOP_METRICS_HOST')
        .default('0.0.0.0'),
    );
  return addScalerOptions(cmd);
}

/**
 * Run the coordinator until SIGINT/SIGTERM: connect, serve /metrics, /healthz, /readyz, start the
 * scaler when enabled, run. `cmd` is the command the flags were parsed on (it tells a default port
 * from an explicit one).
 */
export async function serveCoordinator(g: GlobalOptions, opts: CoordinatorFlags, cmd: Command): Promise<void> {
  const log = cliLogger(g, 'coordinator', 'info');
  const transport = await connectNats({
    leaseMs: opts.leaseMs,
    maxDeliver: opts.maxDeliver,
    ...natsOptionsFromFlags(g, process.env),
    name: 'metaloop-coordinator',
    logger: log,
  });
  const metrics = new CoordinatorObservability({ logger: log.child('metrics') });
  let serving = false;
  let metricsServer: ObservabilityServer | undefined;
  if (opts.metricsPort >= 0) {
    const serve = (port: number) =>
      startObservabilityServer({
        port,
        host: opts.metricsHost,
        registry: metrics.registry,
        logger: log.child('metrics'),
        ready: transportReadiness(transport, [['coordinator not serving yet', () => serving]]),
      });
    try {
      metricsServer = await serve(opts.metricsPort);
    } catch (e) {
      // The default port may be taken on a shared host; an explicit port must be served.
      if (cmd.getOptionValueSource('metricsPort') !== 'default') throw e;
      log.warn('default metrics port busy; serving on a free port', { port: opts.metricsPort, error: String(e) });
      metricsServer = await serve(0);
    }
  }
  const coordinator = await Coordinator.create({
    transport,
    logger: log,
    metrics,
    prefix: g.prefix,
    ...(opts.resultTimeoutMs ? { resultTimeoutMs: opts.resultTimeoutMs } : {}),
    leaseMs: opts.leaseMs,
    maxDeliver: opts.maxDeliver,
    dispatch: opts.dispatch,
    speculativeFactor: opts.speculativeFactor,
    speculativeMinMs: opts.speculativeMinMs,
    maxInFlightShards: opts.maxInFlight,
    limits: { maxParams: opts.maxParams, maxMetaBatch: opts.maxMetaBatch, maxSteps: opts.maxSteps },
  });
  let scaler: Awaited<ReturnType<typeof startScaler>>;
  try {
    scaler = await startScaler(opts, coordinator, metrics, log.child('scaler'));
  } catch (e) {
    await coordinator.close();
    await metricsServer?.close();
    await transport.close().catch(() => {});
    throw e;
  }
  const stop = () => {
    log.info('stopping');
    void coordinator.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  coordinator.ready().then(
    () => (serving = true),
    () => {},
  );
  try {
    await coordinator.run();
  } finally {
    serving = false;
    await scaler?.close();
    await coordinator.close();
    await metricsServer?.close();
    await transport.close().catch(() => {});
  }
}

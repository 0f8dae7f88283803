#!/usr/bin/env node
/**
 * `metaloop`: the user's CLI. Thin: parse (commander), call the library, print. Exit codes live in
 * exit-codes.ts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  ConnectionError,
  createLogger,
  DEFAULT_COORDINATOR_METRICS_PORT,
  DEFAULT_PREFIX,
  parseMetricsPort,
  startObservabilityServer,
  transportReadiness,
  type ObservabilityServer,
  type Logger,
  type LogLevel,
} from '@metaloop/shared';
import { registerArtifactCommands } from './commands/artifacts.js';
import { createContext, exitQuietlyOnBrokenPipe, natsSettingsOf, oneLineUsageErrors, type GlobalOptions } from './commands/context.js';
import { registerFollowCommands } from './commands/follow.js';
import { registerLocalCommand } from './commands/local.js';
import { registerRunCommands } from './commands/runs.js';
import { addScalerOptions, startScaler, type ScalerFlags } from './commands/scaler.js';
import { connectNats, DEFAULT_NATS_URL } from './connect.js';
import { Coordinator } from './coordinator.js';
import { DEFAULT_RUN_LIMITS } from './coordinator-options.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { CoordinatorObservability } from './observe.js';


const program = new Command('metaloop')
  .description('Distributed MAML meta-training over NATS: run a coordinator, submit and watch runs')
  .version('0.1.0')
  .addOption(new Option('--nats <url>', 'NATS server URL').env('METALOOP_NATS_URL').default(DEFAULT_NATS_URL))
  .addOption(new Option('--prefix <prefix>', 'subject prefix').env('METALOOP_PREFIX').default(DEFAULT_PREFIX))
  .addOption(new Option('--nats-user <user>', 'NATS user').env('METALOOP_NATS_USER'))
  .addOption(new Option('--nats-password <password>', 'NATS password').env('METALOOP_NATS_PASSWORD'))
  .addOption(new Option('--nats-token <token>', 'NATS token').env('METALOOP_NATS_TOKEN'))
  .addOption(new Option('--nats-creds <file>', 'NATS .creds (or nkey seed) file').env('METALOOP_NATS_CREDS'))
  .addOption(new Option('--nats-tls-ca <file>', 'CA certificate (PEM) to verify the server').env('METALOOP_NATS_TLS_CA'))
  .addOption(new Option('--nats-tls-cert <file>', 'client certificate (PEM)').env('METALOOP_NATS_TLS_CERT'))
  .addOption(new Option('--nats-tls-key <file>', 'client key (PEM)').env('METALOOP_NATS_TLS_KEY'))
  .option('--debug', 'debug logs and stack traces on errors')
  .addHelpText(
    'after',
    `
Connection: --nats or METALOOP_NATS_URL (default ${DEFAULT_NATS_URL}); credentials by flag or METALOOP_NATS_USER,
METALOOP_NATS_PASSWORD, METALOOP_NATS_TOKEN, METALOOP_NATS_CREDS, METALOOP_NATS_TLS_CA/CERT/KEY.
Exit codes: 0 ok, 1 run failed/cancelled or other error, 2 NATS unreachable or bad usage, 3 invalid spec, 4 unknown run,
5 no coordinator answered, 6 permission denied, 130 interrupted.

Example:
  $ metaloop --nats nats://127.0.0.1:4222 submit examples/sinusoid.yaml --watch`,
  );

// Set before the commands are added: they inherit it.
oneLineUsageErrors(program, EXIT.USAGE);
exitQuietlyOnBrokenPipe(process.stdout, process.stderr);

function globals(): GlobalOptions {
  return program.opts<GlobalOptions>();
}


function logger(component: string, fallback: LogLevel): Logger {
  const env = process.env.METALOOP_LOG_LEVEL as LogLevel | undefined;
  return createLogger(component, { level: globals().debug ? 'debug' : (env ?? fallback) });
}

/** Flags of `metaloop coordinator`. */
interface CoordinatorFlags extends ScalerFlags {
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

const err = (line: string) => process.stderr.write(line + '\n');


program
  .command('coordinator')
  .description('run the coordinator (long-running; SIGINT/SIGTERM stop it)')
  .addHelpText('after', '\nExample:\n  $ metaloop --nats nats://127.0.0.1:4222 coordinator --metrics-port 9400\n')
  .addOption(new Option('--result-timeout-ms <ms>', 're-publish a shard after this long without a result (default lease × (max-deliver + 1))').argParser(Number))
  .addOption(new Option('--lease-ms <ms>', 'work lease (JetStream AckWait); workers send in-progress acks within it').env('METALOOP_LEASE_MS').argParser(Number).default(30_000))
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
  )
  .action(async (opts: CoordinatorFlags, cmd: Command) => {
    const g = globals();
    const log = logger('coordinator', 'info');
    const transport = await connectNats(natsSettingsOf(g), g.prefix, log, 'metaloop-coordinator', { leaseMs: opts.leaseMs, maxDeliver: opts.maxDeliver });
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
  });

addScalerOptions(program.commands.find((c) => c.name() === 'coordinator')!);

const ctx = createContext(program);
registerRunCommands(program, ctx);
registerFollowCommands(program, ctx);
registerArtifactCommands(program, ctx);
registerLocalCommand(program, ctx);

function describeError(e: unknown): string {
  const g = globals();
  if (e instanceof ConnectionError) {
    const msg = e.message.split('\n')[0]!;
    return msg.includes(e.url ?? g.nats) ? msg : `cannot connect to NATS at ${e.url ?? g.nats}: ${msg}`;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

try {
  await program.parseAsync(process.argv);
} catch (e: unknown) {
  const debug = program.opts<GlobalOptions>().debug === true;
  if (e instanceof Error && e.name === 'AbortError') {
    err('interrupted');
    process.exitCode = 130;
  } else {
    err(`error: ${describeError(e)}`);
    if (debug && e instanceof Error && e.stack) err(e.stack);
    process.exitCode = exitCodeFor(e);
  }
}
// Everything is closed by now; should a library handle linger, do not hang the shell.
setTimeout(() => process.exit(), 3000).unref();

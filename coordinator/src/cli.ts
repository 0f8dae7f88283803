#!/usr/bin/env node
/**
 * `metaloop`: the user's CLI. Thin: parse (commander), call the library, print. Exit codes live in
 * exit-codes.ts.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  ConnectionError,
  createLogger,
  DEFAULT_COORDINATOR_METRICS_PORT,
  DEFAULT_PREFIX,
  loadSpec,
  parseMetricsPort,
  startObservabilityServer,
  transportReadiness,
  type ObservabilityServer,
  SpecError,
  type Logger,
  type LogLevel,
  type metaloop,
  type Transport,
} from '@metaloop/shared';
import { ApiClient } from './client.js';
import { connectNats, DEFAULT_NATS_URL, type NatsSettings } from './connect.js';
import { Coordinator } from './coordinator.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { listTable, progressLine, recordJson, statusLines, summaryJson, summaryLines } from './format.js';
import { runLocal } from './local.js';
import { CoordinatorObservability } from './observe.js';
import { stateFromProto } from './records.js';

interface GlobalOptions {
  nats: string;
  prefix: string;
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  debug?: boolean;
}

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
  .showHelpAfterError();

function globals(): GlobalOptions {
  return program.opts<GlobalOptions>();
}

function natsSettings(g: GlobalOptions): NatsSettings {
  return {
    url: g.nats,
    user: g.natsUser,
    password: g.natsPassword,
    token: g.natsToken,
    creds: g.natsCreds,
    tlsCa: g.natsTlsCa,
    tlsCert: g.natsTlsCert,
    tlsKey: g.natsTlsKey,
  };
}

function logger(component: string, fallback: LogLevel): Logger {
  const env = process.env.METALOOP_LOG_LEVEL as LogLevel | undefined;
  return createLogger(component, { level: globals().debug ? 'debug' : (env ?? fallback) });
}

/** `--json` or `--output json`. */
function wantsJson(opts: { json?: boolean; output?: string }): boolean {
  return opts.json === true || opts.output === 'json';
}

const jsonOption = () => new Option('--json', 'print JSON');
const outputOption = () => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');

async function withClient<T>(fn: (client: ApiClient) => Promise<T>): Promise<T> {
  const g = globals();
  const transport: Transport = await connectNats(natsSettings(g), g.prefix, logger('metaloop', 'warn'), 'metaloop-cli');
  try {
    return await fn(new ApiClient({ transport, prefix: g.prefix }));
  } finally {
    await transport.close().catch(() => {});
  }
}

function readSpec(file: string, sets: readonly string[]): { text: string; spec: ReturnType<typeof loadSpec> } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SpecError([{ path: '', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }], file);
  }
  return { text, spec: loadSpec(text, file, sets) };
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Prints progress at most every `everyMs` (and at state or eval changes). */
function progressPrinter(write: (line: string) => void, everyMs = 5000): (r: metaloop.RunRecord) => void {
  let last = 0;
  let lastState = '';
  let lastEval = -1;
  return (r) => {
    const state = stateFromProto(r.state);
    const evalStep = r.lastEval?.tasks ? (r.lastEval.step ?? 0) : -1;
    if (Date.now() - last >= everyMs || state !== lastState || evalStep !== lastEval) {
      last = Date.now();
      lastState = state;
      lastEval = evalStep;
      write(progressLine(r));
    }
  };
}

const out = (line: string) => process.stdout.write(line + '\n');
const err = (line: string) => process.stderr.write(line + '\n');

program
  .command('coordinator')
  .description('run the coordinator (long-running; SIGINT/SIGTERM stop it)')
  .addOption(new Option('--result-timeout-ms <ms>', 're-publish a shard after this long without a result').argParser(Number))
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
  .addOption(new Option('--metrics-host <host>', 'interface for the metrics endpoint').default('0.0.0.0'))
  .action(async (opts: { resultTimeoutMs?: number; metricsPort: number; metricsHost: string }, cmd: Command) => {
    const g = globals();
    const log = logger('coordinator', 'info');
    const transport = await connectNats(natsSettings(g), g.prefix, log, 'metaloop-coordinator');
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
    });
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
      await coordinator.close();
      await metricsServer?.close();
      await transport.close().catch(() => {});
    }
  });

program
  .command('submit <spec>')
  .description('validate a run spec locally, submit it, print the run id')
  .option('--set <path=value>', 'override a spec field (repeatable), e.g. --set outer.lr=3e-4', collect, [])
  .option('--watch', 'follow the run until it ends; exit 0 iff it succeeded')
  .addOption(jsonOption())
  .action(async (file: string, opts: { set: string[]; watch?: boolean; json?: boolean }) => {
    const { text, spec } = readSpec(file, opts.set);
    const yaml = opts.set.length > 0 ? JSON.stringify(spec) : text;
    await withClient(async (client) => {
      const rec = await client.submit(yaml, file);
      if (!opts.watch) {
        out(opts.json ? JSON.stringify(recordJson(rec)) : rec.runId);
        return;
      }
      err(`submitted ${rec.runId}`);
      const final = await client.waitFor(rec.runId, { onRecord: progressPrinter(opts.json ? err : out) });
      if (opts.json) out(JSON.stringify(summaryJson(final)));
      else summaryLines(final).forEach((l) => out(l));
      if (stateFromProto(final.state) !== 'succeeded') process.exitCode = EXIT.FAILURE;
    });
  });

program
  .command('status <run>')
  .description("show a run's state, step, losses and last evaluation")
  .addOption(jsonOption())
  .addOption(outputOption())
  .action(async (runId: string, opts: { json?: boolean; output?: string }) => {
    await withClient(async (client) => {
      const rec = await client.status(runId);
      if (wantsJson(opts)) out(JSON.stringify(recordJson(rec)));
      else statusLines(rec).forEach((l) => out(l));
    });
  });

program
  .command('list')
  .description('list runs')
  .option('--active', 'only pending, running and paused runs')
  .addOption(jsonOption())
  .addOption(outputOption())
  .action(async (opts: { active?: boolean; json?: boolean; output?: string }) => {
    await withClient(async (client) => {
      const runs = await client.list(!opts.active);
      if (wantsJson(opts)) out(JSON.stringify(runs.map((r) => recordJson(r))));
      else listTable(runs).forEach((l) => out(l));
    });
  });

for (const verb of ['cancel', 'pause', 'resume'] as const) {
  program
    .command(`${verb} <run>`)
    .description(`${verb} a run`)
    .action(async (runId: string) => {
      await withClient(async (client) => {
        const rec = await client[verb](runId);
        out(`${rec.runId}: ${stateFromProto(rec.state)}`);
      });
    });
}

program
  .command('local <spec>')
  .description('run a coordinator and N workers with one command and train a spec to the end')
  .option('-w, --workers <n>', 'number of workers', (v) => Number.parseInt(v, 10), 2)
  .option('--set <path=value>', 'override a spec field (repeatable)', collect, [])
  .option('--embedded', 'in-process transport and workers, even when nats-server is installed')
  .addOption(jsonOption())
  .action(async (file: string, opts: { workers: number; set: string[]; embedded?: boolean; json?: boolean }) => {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new SpecError([{ path: '--workers', message: 'expected a whole number >= 1' }], 'command line');
    const { spec } = readSpec(file, opts.set);
    const g = globals();
    const externalNats = program.getOptionValueSource('nats') !== 'default';
    const print = opts.json ? err : out;
    const aborter = new AbortController();
    const onSignal = () => {
      err('interrupted: stopping the run, the workers and the server');
      aborter.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const result = await runLocal({
      spec,
      source: file,
      workers: opts.workers,
      nats: externalNats ? natsSettings(g) : undefined,
      embedded: opts.embedded === true,
      prefix: g.prefix,
      logger: logger('local', 'warn'),
      onRecord: progressPrinter(print),
      signal: aborter.signal,
    }).catch((e: unknown) => {
      if (aborter.signal.aborted) {
        process.exitCode = 130;
        return null;
      }
      throw e;
    });
    if (!result) return;
    const rec = result.record;
    if (opts.json) {
      err(`wall time ${result.wallSeconds.toFixed(1)} s on ${result.mode} (${result.address})`);
      out(JSON.stringify(summaryJson(rec)));
    } else {
      summaryLines(rec).forEach((l) => out(l));
      out(`wall time ${result.wallSeconds.toFixed(1)} s on ${result.mode} (${result.address})`);
    }
    if (stateFromProto(rec.state) !== 'succeeded') process.exitCode = EXIT.FAILURE;
  });

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
  err(`error: ${describeError(e)}`);
  if (debug && e instanceof Error && e.stack) err(e.stack);
  process.exitCode = exitCodeFor(e);
}
// Everything is closed by now; should a library handle linger, do not hang the shell.
setTimeout(() => process.exit(), 3000).unref();

/** What every `metaloop` command shares: global options, the connection, output helpers. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createLogger, loadSpec, type Logger, type LogLevel, type RunSpec, type Transport } from '@metaloop/shared';
import { ApiClient } from '../client.js';
import { connectNats, type NatsSettings } from '../connect.js';
import { UsageError } from '../errors.js';

export interface GlobalOptions {
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

export interface CliContext {
  readonly program: Command;
  globals(): GlobalOptions;
  natsSettings(): NatsSettings;
  logger(component: string, fallback: LogLevel): Logger;
  /** Connect, run `fn` with an API client (and its transport), close. */
  withClient<T>(fn: (client: ApiClient, transport: Transport) => Promise<T>): Promise<T>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** The NATS connection settings of the global --nats* flags. */
export function natsSettingsOf(g: GlobalOptions): NatsSettings {
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

export function createContext(program: Command): CliContext {
  const globals = () => program.opts<GlobalOptions>();
  const natsSettings = (): NatsSettings => natsSettingsOf(globals());
  const logger = (component: string, fallback: LogLevel): Logger => {
    const env = process.env.METALOOP_LOG_LEVEL as LogLevel | undefined;
    return createLogger(component, { level: globals().debug ? 'debug' : (env ?? fallback) });
  };
  return {
    program,
    globals,
    natsSettings,
    logger,
    async withClient(fn) {
      const g = globals();
      // A light client: the CLI's NATS role may only call the API and read events (no JetStream).
      const transport = await connectNats(natsSettings(), g.prefix, logger('metaloop', 'warn'), 'metaloop-cli', { jetstream: false });
      try {
        return await fn(new ApiClient({ transport, prefix: g.prefix }), transport);
      } finally {
        await transport.close().catch(() => {});
      }
    },
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
  };
}

/** `--json` or `--output json`. */
export function wantsJson(opts: { json?: boolean; output?: string }): boolean {
  return opts.json === true || opts.output === 'json';
}

export const jsonOption = () => new Option('--json', 'print JSON (same as --output json)');
export const outputOption = () => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');

/** Append `Example:` lines to a command's --help. */
export function examples(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

export const collect = (value: string, previous: string[]) => [...previous, value];

export function readSpec(file: string, sets: readonly string[]): { text: string; spec: RunSpec } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the run spec: ${fileProblem(file, err)}`);
  }
  return { text, spec: loadSpec(text, file, sets) };
}

/** A file system error as words: `no such file: x.yaml`, `x is a directory`, `permission denied: x`. */
export function fileProblem(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `no such file: ${path}`;
  if (code === 'EISDIR') return `${path} is a directory, not a file`;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied: ${path}`;
  return `${path}: ${(err as Error).message ?? String(err)}`;
}

/** A positive whole number option value (a usage error otherwise: exit 2). */
export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} expects a whole number >= 1, got ${JSON.stringify(v)}`);
    return n;
  };
}

/**
 * `metaloop … | head`: when the reader goes away, stop quietly with exit 0 (as `git log | head`
 * does) instead of an EPIPE stack trace.
 */
export function exitQuietlyOnBrokenPipe(...streams: NodeJS.WriteStream[]): void {
  for (const stream of streams) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}

/**
 * Commander's usage errors (unknown command, option or value) as one line on stderr with exit 2
 * (EXIT.USAGE): `unknown command 'stauts' (did you mean status?)`, not the whole help.
 */
export function oneLineUsageErrors(program: Command, usageExit: number): Command {
  return program
    .configureOutput({ outputError: (str, write) => write(`${str.replace(/\n\((Did you mean [^)]*)\)/, (_m, d: string) => ` (${d.charAt(0).toLowerCase()}${d.slice(1)})`).trimEnd()}\n`) })
    .exitOverride((e) => process.exit(e.exitCode === 1 ? usageExit : e.exitCode));
}

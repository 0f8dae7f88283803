/** What every `metaloop` command shares: global options, the connection, output helpers. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ApiClient, cliLogger, type GlobalOptions } from '@metaloop/client';
import { connectNats, natsOptionsFromFlags, type Logger, type LogLevel, type NatsTransportOptions, type Transport } from '@metaloop/shared';

export interface CliContext {
  readonly program: Command;
  globals(): GlobalOptions;
  /** Connection options of the global --nats* flags (and their METALOOP_* variables). */
  natsOptions(): NatsTransportOptions;
  logger(component: string, fallback: LogLevel): Logger;
  /** Connect, run `fn` with an API client (and its transport), close. */
  withClient<T>(fn: (client: ApiClient, transport: Transport) => Promise<T>): Promise<T>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

export function createContext(program: Command): CliContext {
  const globals = () => program.opts<GlobalOptions>();
  const natsOptions = (): NatsTransportOptions => natsOptionsFromFlags(globals(), process.env);
  const logger = (component: string, fallback: LogLevel): Logger => cliLogger(globals(), component, fallback);
  return {
    program,
    globals,
    natsOptions,
    logger,
    async withClient(fn) {
      const g = globals();
      // A light client: the CLI's NATS role may only call the API and read events (no JetStream).
      const transport = await connectNats({ ...natsOptions(), name: 'metaloop-cli', logger: logger('metaloop', 'warn'), jetstream: false });
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

/** A whole number >= 0 option value (a usage error otherwise: exit 2). */
export function wholeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} expects a whole number >= 0, got ${JSON.stringify(v)}`);
    return n;
  };
}

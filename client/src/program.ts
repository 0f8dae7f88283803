/**
 * What the coordinator's bin (`metaloop-coordinator`) and the user's CLI (`metaloop`, @metaloop/cli)
 * share on their command line: the NATS flags, one-line usage errors, quiet broken pipes and the
 * error → exit code ending.
 */
import { Option, type Command } from 'commander';
import { ConnectionError, createLogger, DEFAULT_NATS_URL, NATS_FLAG_SPECS, type Logger, type LogLevel, type NatsFlags } from '@metaloop/shared';
import { exitCodeFor } from './exit-codes.js';

/** The global flags: NATS (natsOptionsFromFlags of @metaloop/shared maps them) and --debug. */
export interface GlobalOptions extends NatsFlags {
  nats: string;
  prefix: string;
  debug?: boolean;
}

/** --nats, --prefix, --nats-user … --nats-tls-key (each with its METALOOP_* variable) and --debug. */
export function addNatsFlags(cmd: Command): Command {
  for (const f of NATS_FLAG_SPECS) {
    const option = new Option(f.flags, f.description).env(f.env);
    cmd.addOption(f.default === undefined ? option : option.default(f.default));
  }
  return cmd.option('--debug', 'debug logs and stack traces on errors');
}

/** The help lines about the connection flags. */
export const CONNECTION_HELP = `Connection: --nats or METALOOP_NATS_URL (default ${DEFAULT_NATS_URL}); credentials by flag or METALOOP_NATS_USER,
METALOOP_NATS_PASSWORD, METALOOP_NATS_TOKEN, METALOOP_NATS_CREDS, METALOOP_NATS_TLS_CA/CERT/KEY.`;

/** A logger at --debug, else METALOOP_LOG_LEVEL, else `fallback`. */
export function cliLogger(g: { debug?: boolean | undefined }, component: string, fallback: LogLevel): Logger {
  const env = process.env.METALOOP_LOG_LEVEL as LogLevel | undefined;
  return createLogger(component, { level: g.debug ? 'debug' : (env ?? fallback) });
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

function describeError(e: unknown, g: GlobalOptions): string {
  if (e instanceof ConnectionError) {
    const msg = e.message.split('\n')[0]!;
    return msg.includes(e.url ?? g.nats) ? msg : `cannot connect to NATS at ${e.url ?? g.nats}: ${msg}`;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Parse and run `program`; an error is one line on stderr (with the stack under --debug) and its
 * exit code (exit-codes.ts); an abort is `interrupted`, 130.
 */
export async function runProgram(program: Command, argv: readonly string[] = process.argv): Promise<void> {
  const err = (line: string) => process.stderr.write(line + '\n');
  try {
    await program.parseAsync([...argv]);
  } catch (e: unknown) {
    const g = program.opts<GlobalOptions>();
    if (e instanceof Error && e.name === 'AbortError') {
      err('interrupted');
      process.exitCode = 130;
    } else {
      err(`error: ${describeError(e, g)}`);
      if (g.debug === true && e instanceof Error && e.stack) err(e.stack);
      process.exitCode = exitCodeFor(e);
    }
  }
  // Everything is closed by now; should a library handle linger, do not hang the shell.
  setTimeout(() => process.exit(), 3000).unref();
}

#!/usr/bin/env node
/**
 * `metaloop`: the user's CLI. Thin: parse (commander), call the library, print. Exit codes live in
 * @metaloop/client's exit-codes.ts (the server's bin exits by the same table).
 */
import { Command } from 'commander';
import { addNatsFlags, CONNECTION_HELP, EXIT, exitQuietlyOnBrokenPipe, oneLineUsageErrors, runProgram, type GlobalOptions } from '@metaloop/client';
import { addCoordinatorFlags, serveCoordinator, type CoordinatorFlags } from '@metaloop/coordinator';
import { createContext } from './commands/context.js';
import { registerControlCommands } from './commands/control.js';
import { registerDataCommands } from './commands/data.js';
import { registerFollowCommands } from './commands/follow.js';
import { registerLocalCommand } from './commands/local.js';
import { registerOutputCommands } from './commands/outputs.js';

const program = addNatsFlags(
  new Command('metaloop').description('Distributed MAML meta-training over NATS: run a coordinator, submit and watch runs').version('0.1.0'),
).addHelpText(
  'after',
  `
${CONNECTION_HELP}
Exit codes: 0 ok, 1 run failed/cancelled or other error, 2 NATS unreachable or bad usage, 3 invalid spec, 4 unknown run,
5 no coordinator answered, 6 permission denied, 130 interrupted.

Example:
  $ metaloop --nats nats://127.0.0.1:4222 submit examples/sinusoid.yaml --watch`,
);

// Set before the commands are added: they inherit it.
oneLineUsageErrors(program, EXIT.USAGE);
exitQuietlyOnBrokenPipe(process.stdout, process.stderr);

// `metaloop coordinator`: the coordinator server of @metaloop/coordinator (the same code and flags
// as its bin `metaloop-coordinator`), run in this process.
addCoordinatorFlags(
  program
    .command('coordinator')
    .description('run the coordinator (long-running; SIGINT/SIGTERM stop it; the same as `metaloop-coordinator`)')
    .addHelpText('after', '\nExample:\n  $ metaloop --nats nats://127.0.0.1:4222 coordinator --metrics-port 9400\n'),
).action(async (opts: CoordinatorFlags, cmd: Command) => serveCoordinator(program.opts<GlobalOptions>(), opts, cmd));

const ctx = createContext(program);
registerControlCommands(program, ctx);
registerFollowCommands(program, ctx);
registerOutputCommands(program, ctx);
registerLocalCommand(program, ctx);
registerDataCommands(program, ctx);

await runProgram(program);

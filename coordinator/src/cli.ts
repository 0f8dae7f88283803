#!/usr/bin/env node
/**
 * `metaloop-coordinator`: the coordinator server (long-running; SIGINT/SIGTERM stop it). The same
 * flags as `metaloop coordinator` of the user's CLI (@metaloop/cli), which runs the same code
 * (commands/server.ts). Exit codes: @metaloop/client's exit-codes.ts.
 */
import { Command } from 'commander';
import { addNatsFlags, CONNECTION_HELP, EXIT, exitQuietlyOnBrokenPipe, oneLineUsageErrors, runProgram, type GlobalOptions } from '@metaloop/client';
import { addCoordinatorFlags, serveCoordinator, type CoordinatorFlags } from './commands/server.js';

const program = addNatsFlags(
  new Command('metaloop-coordinator')
    .description('Metaloop coordinator: the outer loop, scheduler, aggregator, checkpoints and control API (long-running; SIGINT/SIGTERM stop it)')
    .version('0.1.0'),
);
addCoordinatorFlags(program)
  .addHelpText('after', `\n${CONNECTION_HELP}\n\nExample:\n  $ metaloop-coordinator --nats nats://127.0.0.1:4222 --metrics-port 9400\n`)
  .action(async (_opts: unknown, cmd: Command) => {
    const all = cmd.opts<GlobalOptions & CoordinatorFlags>();
    await serveCoordinator(all, all, cmd);
  });
oneLineUsageErrors(program, EXIT.USAGE);
exitQuietlyOnBrokenPipe(process.stdout, process.stderr);
await runProgram(program);

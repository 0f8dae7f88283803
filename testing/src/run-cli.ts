/** Tests' helpers: run a command (or the `metaloop` CLI) as a child process, tracked by pid. */
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import { METALOOP } from './paths.js';

/** The `metaloop` CLI's entry point (cli/dist/cli.js). */
export const CLI = METALOOP;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** SIGKILL every pid in `pids` (those already gone are passed over). */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/**
 * A set for the pids of the child processes a test file starts; the file's `after` hook kills
 * whatever is still in it (SIGKILL), on success and on failure. Call it at the file's top level.
 */
export function childPids(): Set<number> {
  const pids = new Set<number>();
  after(() => killAll(pids));
  return pids;
}

export interface RunCommandOptions {
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL by pid and reject after this long (default 120 s). */
  timeoutMs?: number;
}

/**
 * Runs `command ...args` and collects its output. Its pid is in `children` while it runs (so the
 * test's `after` can kill it); after `timeoutMs` it is killed (SIGKILL, by pid) and the promise
 * rejects with the command and the tail of its output.
 */
export function runCommand(children: Set<number>, command: string, args: readonly string[], options: RunCommandOptions = {}): Promise<Ran> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms; stderr:\n${stderr.slice(-3000)}\nstdout:\n${stdout.slice(-2000)}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child.pid!);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `metaloop ...args` (METALOOP_LOG_LEVEL=warn unless `env` says otherwise). */
export function runMetaloop(children: Set<number>, args: readonly string[], env: Record<string, string>, timeoutMs: number): Promise<Ran> {
  return runCommand(children, process.execPath, [CLI, ...args], { env: { ...process.env, METALOOP_LOG_LEVEL: 'warn', ...env }, timeoutMs });
}

/** Tests' helper: run the `metaloop` CLI (dist/cli.js) as a child process, tracked by pid. */
import { spawn } from 'node:child_process';
import { METALOOP } from './paths.js';

/** The `metaloop` CLI's entry point (cli/dist/cli.js). */
export const CLI = METALOOP;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `metaloop ...args`; its pid is in `children` while it runs (so the test's `after` can kill
 * it), SIGKILL and a rejection after `timeoutMs`.
 */
export function runMetaloop(children: Set<number>, args: readonly string[], env: Record<string, string>, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, METALOOP_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`metaloop ${args.join(' ')} timed out; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child.pid!);
      resolve({ code, stdout, stderr });
    });
  });
}

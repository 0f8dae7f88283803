/**
 * Child processes of cross-process tests, with captured logs, stopped by pid; polling with a
 * deadline that says what it waited for and what the processes logged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function requireExecutable(path: string, what: string, install: string): string {
  try {
    accessSync(path, fsConstants.X_OK);
    return path;
  } catch {
    throw new Error(`${what} not found at ${path}: ${install}`);
  }
}

/** A child process whose output is kept (last lines) for failure messages. */
export class Proc {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
  ) {
    this.child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.lines.push(line);
        if (this.lines.length > 200) this.lines.shift();
        if (process.env.METALOOP_TEST_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
      }
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
      this.child.once('error', (err) => {
        this.lines.push(`spawn error: ${err.message}`);
        this.exited = { code: -1, signal: null };
        resolve();
      });
    });
  }

  /** `name exited with …` once the process is gone, else undefined. */
  exitReason(): string | undefined {
    return this.exited ? `${this.name} exited (code ${this.exited.code}, signal ${this.exited.signal})` : undefined;
  }

  /** The kept output lines (the last 200), oldest first. */
  output(): readonly string[] {
    return this.lines;
  }

  /** SIGKILL by pid (kill -9, no clean-up); resolves when the process is gone. */
  async kill(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, 'SIGKILL');
    } catch {
      return;
    }
    await this.exitPromise;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  tail(n = 40): string {
    return `--- last lines of ${this.name} (pid ${this.pid}) ---\n` + this.lines.slice(-n).join('\n');
  }

  /** SIGTERM by pid, SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const killed = await Promise.race([this.exitPromise.then(() => true), sleep(graceMs).then(() => false)]);
    if (!killed) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await this.exitPromise;
    }
  }
}

/**
 * Polls `check` until it returns a truthy value; throws with `describe()` after `timeoutMs`, or at
 * once when `dead()` names a reason (e.g. a process it waits for has exited).
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  describe: () => string = () => '',
  dead: () => string | undefined = () => undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const gone = dead();
    if (gone) throw new Error(`while waiting for ${what}: ${gone}\n${describe()}`);
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}\n${describe()}`);
    await sleep(250);
  }
}

export async function httpStatus(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.text();
  return res.status;
}


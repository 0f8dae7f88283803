/**
 * startNatsServer(): run the real `nats-server` binary with JetStream on a free loopback port,
 * for `metaloop local`, tests and benchmarks. stop() and restart() (same port and store: chaos
 * tests) are explicit; an exiting Node process SIGKILLs servers it forgot to stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { MetaloopError } from './errors.js';

export interface NatsServerOptions {
  /** Path of the binary; default: $METALOOP_NATS_SERVER, then `nats-server` on PATH, /usr/sbin, /usr/local/bin. */
  readonly binary?: string;
  /** Client port; default: a free loopback port. */
  readonly port?: number;
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  /** JetStream store directory; default: a new temp dir (removed by stop() unless keepStore). */
  readonly storeDir?: string;
  /** Keep the store directory after stop(). A storeDir you pass is never removed. */
  readonly keepStore?: boolean;
  /** A nats-server config file (`-c`), e.g. accounts and permissions. */
  readonly configFile?: string;
  /** Extra command-line arguments. */
  readonly args?: readonly string[];
  /** How long to wait for the server to accept connections. Default 10000. */
  readonly startTimeoutMs?: number;
}

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** pid of the current process (changes on restart). */
  readonly pid: number;
  readonly storeDir: string;
  /** The last lines the server logged (for error messages). */
  logTail(): string;
  /** SIGTERM, then SIGKILL after 5 s; idempotent; removes a temp store dir unless keepStore. */
  stop(): Promise<void>;
  /** Stop (SIGTERM, or SIGKILL with `kill: true`) and start again on the same port and store. */
  restart(options?: { readonly kill?: boolean; readonly downMs?: number }): Promise<void>;
}

export class NatsServerError extends MetaloopError {
  override readonly name: string = 'NatsServerError';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The nats-server binary, or a NatsServerError that says how to install it. */
export function findNatsServer(binary?: string, searchDirs?: readonly string[]): string {
  const explicit = binary ?? (searchDirs ? undefined : process.env.METALOOP_NATS_SERVER);
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new NatsServerError(`nats-server not executable at ${explicit}`);
  }
  const dirs = searchDirs ?? [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new NatsServerError('nats-server not found on PATH or in /usr/sbin: install it with `apt-get install -y nats-server`');
}

/** A port that was free a moment ago (nats-server does not accept port 0). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function probe(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

class Server implements NatsServer {
  private child: ChildProcess | null = null;
  private tail: string[] = [];
  private stopped = false;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly binary: string,
    private readonly host: string,
    public port: number,
    readonly storeDir: string,
    private readonly removeStore: boolean,
    private readonly options: NatsServerOptions,
  ) {}

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  logTail(): string {
    return this.tail.join('\n');
  }

  private record(chunk: Buffer): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      this.tail.push(line);
      if (this.tail.length > 40) this.tail.shift();
    }
  }

  /** Spawns and waits until the port accepts connections. Rejects with `inUse` set on a port collision. */
  async start(): Promise<void> {
    const args = ['-a', this.host, '-p', String(this.port), '-js', '-sd', this.storeDir];
    if (this.options.configFile) args.push('-c', this.options.configFile);
    args.push(...(this.options.args ?? []));
    this.tail = [];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    installExitHook();
    let ready = false;
    let exited: string | null = null;
    child.stdout?.on('data', (c: Buffer) => this.record(c));
    child.stderr?.on('data', (c: Buffer) => {
      this.record(c);
      if (c.toString('utf8').includes('Server is ready')) ready = true;
    });
    child.once('error', (err) => {
      exited = `failed to start: ${err.message}`;
    });
    child.once('exit', (code, signal) => {
      live.delete(child);
      exited ??= `exited (${signal ?? `code ${code}`})`;
    });
    const started = Date.now();
    const deadline = started + (this.options.startTimeoutMs ?? 10_000);
    while (Date.now() < deadline) {
      if (exited !== null) {
        const log = this.logTail();
        const err = new NatsServerError(`nats-server ${String(exited)} on ${this.url}: ${log.split('\n').slice(-3).join(' | ')}`);
        (err as NatsServerError & { inUse?: boolean }).inUse = /address already in use/i.test(log);
        throw err;
      }
      if (ready) return;
      // Without the log line (a config may send logs to a file), accept a TCP connect, but not
      // too early: on a port collision someone else's process answers while ours is exiting.
      const quiet = this.tail.length === 0 && Date.now() - started > 500;
      const listening = this.tail.some((l) => l.includes('Listening for client connections'));
      if ((quiet || listening) && (await probe(this.host, this.port)) && child.exitCode === null) return;
      await sleep(50);
    }
    await this.kill('SIGKILL');
    throw new NatsServerError(`nats-server did not accept connections on ${this.url} within ${this.options.startTimeoutMs ?? 10_000} ms: ${this.logTail()}`);
  }

  private async kill(signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(t);
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopped = true;
      this.stopping = (async () => {
        await this.kill('SIGTERM');
        if (this.removeStore) rmSync(this.storeDir, { recursive: true, force: true });
      })();
    }
    return this.stopping;
  }

  async restart(options: { readonly kill?: boolean; readonly downMs?: number } = {}): Promise<void> {
    if (this.stopped) throw new NatsServerError('restart() after stop()');
    await this.kill(options.kill ? 'SIGKILL' : 'SIGTERM');
    if (options.downMs) await sleep(options.downMs);
    // The port may linger briefly; retry a few times rather than move (clients reconnect to it).
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start();
        return;
      } catch (err) {
        if (!(err as { inUse?: boolean }).inUse || attempt >= 20) throw err;
        await sleep(250);
      }
    }
  }
}

/** Start nats-server with JetStream; resolves once it accepts connections. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = findNatsServer(options.binary);
  const host = options.host ?? '127.0.0.1';
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'metaloop-nats-'));
  const removeStore = !options.storeDir && !options.keepStore;
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort(host));
    const server = new Server(binary, host, port, storeDir, removeStore, options);
    try {
      await server.start();
      return server;
    } catch (err) {
      const retry = (err as { inUse?: boolean }).inUse && options.port === undefined && attempt < 5;
      if (!retry) {
        await server.stop();
        throw err;
      }
    }
  }
}

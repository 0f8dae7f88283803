/**
 * The HTTP endpoint every Metaloop process serves for operators:
 *   GET /metrics  Prometheus text exposition of a prom-client registry
 *   GET /healthz  200 while the process is alive (the event loop answers)
 *   GET /readyz   200 when `ready()` says so, else 503 with the reason
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { MetaloopError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';

/** What a readiness check may answer: a boolean, or a boolean with the reason it is not ready. */
export type Readiness = boolean | { readonly ready: boolean; readonly reason?: string };
export type ReadinessCheck = () => Readiness | Promise<Readiness>;

export interface ObservabilityServerOptions {
  /** TCP port; 0 binds a free port (read it back from `server.port`). */
  port: number;
  /** Interface to bind; default `0.0.0.0` (scrapable from other pods). Tests pass `127.0.0.1`. */
  host?: string;
  /** Registry served on /metrics; default: a fresh one. */
  registry?: Registry;
  /** Readiness check for /readyz; default: always ready. A throwing check counts as not ready. */
  ready?: ReadinessCheck;
  logger?: Logger;
  /** Register prom-client's default process/Node.js metrics on the registry (default true). */
  defaultMetrics?: boolean;
  /** Give up on a readiness check after this many ms (503). Default 2000. */
  readyTimeoutMs?: number;
}

export interface ResolvedObservabilityServerOptions {
  readonly port: number;
  readonly host: string;
  readonly registry: Registry;
  readonly ready: ReadinessCheck;
  readonly logger: Logger;
  readonly defaultMetrics: boolean;
  readonly readyTimeoutMs: number;
}

export function compileObservabilityServerOptions(o: ObservabilityServerOptions): ResolvedObservabilityServerOptions {
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new MetaloopError(`metrics port must be an integer in 0..65535 (0 = any free port), got ${String(o.port)}`);
  }
  const readyTimeoutMs = o.readyTimeoutMs ?? 2000;
  if (!(readyTimeoutMs > 0)) throw new MetaloopError(`readyTimeoutMs must be > 0, got ${readyTimeoutMs}`);
  return {
    port: o.port,
    host: o.host ?? '0.0.0.0',
    registry: o.registry ?? new Registry(),
    ready: o.ready ?? (() => true),
    logger: o.logger ?? silentLogger,
    defaultMetrics: o.defaultMetrics ?? true,
    readyTimeoutMs,
  };
}

export interface ObservabilityServer {
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  readonly host: string;
  /** Base URL, e.g. `http://127.0.0.1:9400`. */
  readonly url: string;
  readonly registry: Registry;
  /** Stops listening and drops open connections; safe to call more than once. */
  close(): Promise<void>;
}

/** Registers the default process metrics once per registry (a second call would throw in prom-client). */
export function ensureDefaultMetrics(registry: Registry): void {
  if (registry.getSingleMetric('process_cpu_user_seconds_total') !== undefined) return;
  collectDefaultMetrics({ register: registry });
}

async function checkReady(check: ReadinessCheck, timeoutMs: number): Promise<{ ready: boolean; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<Readiness>((resolve) => {
      timer = setTimeout(() => resolve({ ready: false, reason: `readiness check timed out after ${timeoutMs} ms` }), timeoutMs);
    });
    const r = await Promise.race([Promise.resolve().then(check), timeout]);
    if (typeof r === 'boolean') return { ready: r, reason: r ? 'ready' : 'not ready' };
    return { ready: r.ready, reason: r.reason ?? (r.ready ? 'ready' : 'not ready') };
  } catch (err) {
    return { ready: false, reason: `readiness check failed: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

/** Starts the /metrics, /healthz, /readyz server; resolves once it listens. */
export async function startObservabilityServer(options: ObservabilityServerOptions): Promise<ObservabilityServer> {
  const o = compileObservabilityServerOptions(options);
  const log = o.logger;
  if (o.defaultMetrics) ensureDefaultMetrics(o.registry);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      try {
        send(res, 200, o.registry.contentType, await o.registry.metrics());
      } catch (err) {
        log.error('metrics collection failed', { error: err instanceof Error ? err.message : String(err) });
        send(res, 500, 'text/plain; charset=utf-8', 'metrics collection failed\n');
      }
    } else if (path === '/healthz') {
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    } else if (path === '/readyz') {
      const r = await checkReady(o.ready, o.readyTimeoutMs);
      send(res, r.ready ? 200 : 503, 'text/plain; charset=utf-8', `${r.reason}\n`);
    } else {
      send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n');
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('observability request failed', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(new MetaloopError(`cannot serve metrics on ${o.host}:${o.port}: ${err.message}`, { cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(o.port, o.host);
  });
  server.on('error', (err) => log.error('observability server error', { error: err.message }));

  const port = (server.address() as AddressInfo).port;
  const urlHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  log.info('serving /metrics, /healthz, /readyz', { host: o.host, port });

  let closing: Promise<void> | undefined;
  return {
    port,
    host: o.host,
    url: `http://${urlHost}:${port}`,
    registry: o.registry,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Default metrics ports: coordinator 9400, worker 9401. */
export const DEFAULT_COORDINATOR_METRICS_PORT = 9400;
export const DEFAULT_WORKER_METRICS_PORT = 9401;

/**
 * Parses a `--metrics-port` value: an integer port, 0 for any free port, -1 to serve nothing
 * (returns `null`). Missing → `fallback`.
 */
export function parseMetricsPort(value: string | number | undefined, fallback: number): number | null {
  if (value === undefined || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(value.trim());
  if (n === -1) return null;
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new MetaloopError(`--metrics-port must be a port in 0..65535, 0 for any free port or -1 for none; got ${String(value)}`);
  }
  return n;
}

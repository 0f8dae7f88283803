/**
 * WorkerOptions (what callers pass) → compileWorkerOptions() → resolved options with units in names.
 * Only what the caller passes counts: environment variables are the worker CLI's to read (cli.ts).
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { DEFAULT_PREFIX, silentLogger, subjects, type Logger, type WorkerMetrics, type WorkerTransport } from '@metaloop/shared';
import { resolveBackendPreference, type BackendPreference } from './backend.js';
import { WorkerOptionsError } from './errors.js';
import type { GpuInfo } from './gpu.js';

export interface WorkerOptions {
  readonly transport: WorkerTransport;
  /** Worker id in heartbeats and results; default `<host>-<pid>-<random>`. */
  readonly id?: string;
  readonly logger?: Logger;
  /** Acceptable backend; default 'any' (the chain). */
  readonly backend?: BackendPreference;
  /** Subject prefix; default 'metaloop'. */
  readonly prefix?: string;
  /** Heartbeat period; default 2000. */
  readonly heartbeatMs?: number;
  /** In-progress ack period while a shard computes; default 5000. */
  readonly workingMs?: number;
  /** Redelivery delay after a transient failure (parameter or run-record fetch); default 1000. */
  readonly retryDelayMs?: number;
  /** How long close() lets the current shard finish before abandoning it; default 30000. */
  readonly closeTimeoutMs?: number;
  /** Longest single pull of the work queue; default 1000. */
  readonly pollMs?: number;
  /** Prometheus metrics to update (createWorkerObservability); default none. */
  readonly metrics?: WorkerMetrics;
  /**
   * Simulate a slow device: wait this long inside every shard (leased, sending in-progress acks)
   * before computing it (chaos tests kill workers mid-shard). Default 0. The worker CLI's hidden
   * `--slow-shard-ms` (METALOOP_WORKER_SLOW_SHARD_MS) sets it.
   */
  readonly slowShardMs?: number;
  /** The GPU to report instead of asking nvidia-smi (gpu.ts); null = none. Default: detected. */
  readonly gpu?: GpuInfo | null;
  /**
   * Where shards come from: `direct` (assigned to this worker over core NATS; results go back as
   * one request each) or `queue` (the JetStream WorkQueue, for workers behind unreliable links).
   * Must match the coordinator's. Default `direct`.
   */
  readonly dispatch?: 'queue' | 'direct';
  /** Direct dispatch: wait this long for the coordinator's ack of a result before retrying. Default 10000. */
  readonly resultAckMs?: number;
}

export interface CompiledWorkerOptions {
  readonly transport: WorkerTransport;
  readonly id: string;
  readonly logger: Logger;
  readonly backend: BackendPreference;
  readonly prefix: string;
  readonly heartbeatMs: number;
  readonly workingMs: number;
  readonly retryDelayMs: number;
  readonly closeTimeoutMs: number;
  readonly pollMs: number;
  readonly version: string;
  readonly hostname: string;
  readonly pid: number;
  readonly metrics: WorkerMetrics | undefined;
  readonly slowShardMs: number;
  readonly gpu: GpuInfo | null | undefined;
  readonly dispatch: 'queue' | 'direct';
  readonly resultAckMs: number;
}

const require = createRequire(import.meta.url);

/** This package's version (from package.json). */
export const WORKER_VERSION: string = (require('../package.json') as { version: string }).version;

function ms(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw new WorkerOptionsError(name, `expected a number of milliseconds >= ${min}, got ${String(value)}`);
  }
  return v;
}

function dispatchOf(v: string | undefined): 'queue' | 'direct' {
  if (v === undefined || v === 'queue' || v === 'direct') return v ?? 'direct';
  throw new WorkerOptionsError('dispatch', `${JSON.stringify(v)}: use queue or direct (the same as the coordinator's)`);
}

export function compileWorkerOptions(options: WorkerOptions): CompiledWorkerOptions {
  if (!options || typeof options.transport !== 'object' || options.transport === null) {
    throw new WorkerOptionsError('transport', 'required (a WorkerTransport from @metaloop/shared: connectNats() or createInProc())');
  }
  const host = hostname();
  const id = options.id ?? `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) {
    throw new WorkerOptionsError('id', `${JSON.stringify(id)}: use 1-128 characters of A-Z a-z 0-9 _ . : -`);
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  try {
    subjects(prefix);
  } catch (err) {
    throw new WorkerOptionsError('prefix', (err as Error).message);
  }
  let backend: BackendPreference;
  try {
    backend = resolveBackendPreference(options.backend);
  } catch (err) {
    throw new WorkerOptionsError('backend', (err as Error).message);
  }
  return {
    transport: options.transport,
    id,
    logger: options.logger ?? silentLogger,
    backend,
    prefix,
    heartbeatMs: ms('heartbeatMs', options.heartbeatMs, 2000, 10),
    workingMs: ms('workingMs', options.workingMs, 5000, 10),
    retryDelayMs: ms('retryDelayMs', options.retryDelayMs, 1000, 0),
    closeTimeoutMs: ms('closeTimeoutMs', options.closeTimeoutMs, 30_000, 0),
    pollMs: ms('pollMs', options.pollMs, 1000, 10),
    dispatch: dispatchOf(options.dispatch),
    resultAckMs: ms('resultAckMs', options.resultAckMs, 10_000, 10),
    version: WORKER_VERSION,
    hostname: host,
    pid: process.pid,
    metrics: options.metrics,
    slowShardMs: ms('slowShardMs', options.slowShardMs, 0, 0),
    gpu: options.gpu,
  };
}

/**
 * The coordinator's options: what a deployment sets (CoordinatorOptions, with the defaults each
 * takes) and their checked, compiled form (compileCoordinatorOptions), including the run-spec
 * limits checked at submit.
 */
import {
  DEFAULT_LEASE_MS,
  DEFAULT_MAX_DELIVER,
  DEFAULT_PREFIX,
  defaultResultTimeoutMs,
  silentLogger,
  subjects,
  type Logger,
  type Subjects,
  type Transport,
} from '@metaloop/shared';
import { DISPATCH_MODES, type DispatchMode } from './dispatch.js';
import { CoordinatorError } from './errors.js';
import type { CoordinatorObservability } from './observe.js';

function dispatchMode(value: string | undefined): DispatchMode {
  const v = value ?? 'direct';
  if (!(DISPATCH_MODES as readonly string[]).includes(v)) {
    throw new CoordinatorError(`dispatch must be one of ${DISPATCH_MODES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return v as DispatchMode;
}

export interface CoordinatorOptions {
  readonly transport: Transport;
  readonly logger?: Logger;
  /** Subject prefix (default `metaloop`). */
  readonly prefix?: string;
  /** Re-publish a shard whose result has not come within this time. Default 30000. */
  readonly resultTimeoutMs?: number;
  /** Longest time between two writes of an active run's record. Default 1000. */
  readonly recordIntervalMs?: number;
  /**
   * Fail a run after this many failures of one shard (error, NaN or wrong-shape results, or no
   * result within resultTimeoutMs while workers are alive). Default: maxDeliver.
   */
  readonly maxShardFailures?: number;
  /** The work queue's lease (AckWait) the transport was opened with; sets resultTimeoutMs' default. Default 30000. */
  readonly leaseMs?: number;
  /** The work queue's MaxDeliver the transport was opened with. Default 5. */
  readonly maxDeliver?: number;
  /** Speculative copy of a straggling shard after this multiple of its run's median shard time; 0 = off. Default 3. */
  readonly speculativeFactor?: number;
  /** …but never before this many ms. Default 2000. */
  readonly speculativeMinMs?: number;
  /** Shards in flight over all runs (the fair-share budget); 0 = 2 per live worker, at least 8. Default 0. */
  readonly maxInFlightShards?: number;
  /** Run-spec limits checked at submit. */
  readonly limits?: RunLimits;
  /** Resume the active runs found in KV at `run()`. Default true. */
  readonly resume?: boolean;
  /** Prometheus metrics to update (served by the caller, e.g. the CLI's --metrics-port). */
  readonly metrics?: CoordinatorObservability;
  /**
   * How shards reach workers (dispatch.ts): `direct` (core NATS assignment to live workers, one
   * round trip per shard) or `queue` (JetStream WorkQueue, for workers behind unreliable links);
   * workers must run with the same mode. Default `direct`.
   */
  readonly dispatch?: DispatchMode;
}

/** The limits of a coordinator not told otherwise. */
export const DEFAULT_RUN_LIMITS: Required<RunLimits> = { maxParams: 50_000_000, maxMetaBatch: 100_000, maxSteps: 100_000_000 };

/** What a submitted spec may ask for (a shared cluster's guard rails). */
export interface RunLimits {
  /** Parameters of the model (θ). Default 50 000 000 (200 MB of float32). */
  readonly maxParams?: number;
  /** outer.metaBatch. Default 100 000. */
  readonly maxMetaBatch?: number;
  /** outer.steps. Default 100 000 000. */
  readonly maxSteps?: number;
}

export interface CompiledCoordinatorOptions {
  readonly transport: Transport;
  readonly logger: Logger;
  readonly subjects: Subjects;
  readonly resultTimeoutMs: number;
  readonly recordIntervalMs: number;
  readonly maxShardFailures: number;
  readonly leaseMs: number;
  readonly maxDeliver: number;
  readonly speculativeFactor: number;
  readonly speculativeMinMs: number;
  readonly maxInFlightShards: number;
  readonly limits: Required<RunLimits>;
  readonly resume: boolean;
  readonly metrics: CoordinatorObservability | undefined;
  readonly dispatch: DispatchMode;
}

function positive(name: string, value: number | undefined, fallback: number, integer = false): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new CoordinatorError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  }
  return v;
}

export function compileCoordinatorOptions(options: CoordinatorOptions): CompiledCoordinatorOptions {
  if (!options.transport) throw new CoordinatorError('a transport is required');
  const leaseMs = positive('leaseMs', options.leaseMs, DEFAULT_LEASE_MS);
  const maxDeliver = positive('maxDeliver', options.maxDeliver, DEFAULT_MAX_DELIVER, true);
  const nonNegative = (name: string, v: number | undefined, fallback: number) => {
    const x = v ?? fallback;
    if (!Number.isFinite(x) || x < 0) throw new CoordinatorError(`${name} must be a number >= 0, got ${String(v)}`);
    return x;
  };
  const l = options.limits ?? {};
  return {
    transport: options.transport,
    logger: options.logger ?? silentLogger,
    subjects: subjects(options.prefix ?? DEFAULT_PREFIX),
    // The queue redelivers a shard maxDeliver times, one lease each: re-publish only after that.
    resultTimeoutMs: positive('resultTimeoutMs', options.resultTimeoutMs, defaultResultTimeoutMs(leaseMs, maxDeliver)),
    recordIntervalMs: positive('recordIntervalMs', options.recordIntervalMs, 1000),
    maxShardFailures: positive('maxShardFailures', options.maxShardFailures, maxDeliver, true),
    leaseMs,
    maxDeliver,
    speculativeFactor: nonNegative('speculativeFactor', options.speculativeFactor, 3),
    speculativeMinMs: nonNegative('speculativeMinMs', options.speculativeMinMs, 2000),
    maxInFlightShards: Math.floor(nonNegative('maxInFlightShards', options.maxInFlightShards, 0)),
    limits: {
      maxParams: positive('limits.maxParams', l.maxParams, DEFAULT_RUN_LIMITS.maxParams, true),
      maxMetaBatch: positive('limits.maxMetaBatch', l.maxMetaBatch, DEFAULT_RUN_LIMITS.maxMetaBatch, true),
      maxSteps: positive('limits.maxSteps', l.maxSteps, DEFAULT_RUN_LIMITS.maxSteps, true),
    },
    resume: options.resume ?? true,
    metrics: options.metrics,
    dispatch: dispatchMode(options.dispatch),
  };
}

/**
 * What every run loop shares with the coordinator that owns it: the transport, how shards reach
 * workers, the logger, timeouts, the rejection counter, metrics, the fair share of the workers and
 * the live-worker count. (Its own file so that the run loop and its rounds need not import each
 * other.)
 */
import type { Logger, Subjects, Transport } from '@metaloop/shared';
import type { ShardSender } from './dispatch.js';
import type { RunObserver } from './observe.js';
import type { RejectCounter } from './result.js';
import type { FairShare } from './scheduler.js';

export interface RunContext {
  readonly transport: Transport;
  /** How shards reach workers: the JetStream WorkQueue or direct assignment (dispatch.ts). */
  readonly sender: ShardSender;
  readonly subjects: Subjects;
  readonly logger: Logger;
  readonly resultTimeoutMs: number;
  readonly recordIntervalMs: number;
  readonly maxShardFailures: number;
  readonly rejects: RejectCounter;
  /** Prometheus metrics (CoordinatorObservability), when served. */
  readonly observer?: RunObserver | undefined;
  /** The workers' in-flight budget shared by all runs (none: no limit). */
  readonly fairShare?: FairShare | undefined;
  /** Speculative copy of a straggler after this multiple of the median shard time (0 = off). */
  readonly speculativeFactor?: number;
  readonly speculativeMinMs?: number;
  /** Live workers (from heartbeats); lost results count as shard failures only while some are alive. */
  readonly liveWorkers?: () => number;
}

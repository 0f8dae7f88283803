/**
 * What a shard result becomes on the coordinator: decoded and validated once (validate.ts) into a
 * `CheckedResult`, typed, with the shard kind as one name ('train' | 'eval'); or rejected with one
 * of the `REJECT_REASONS`, counted by reason. The step collector (aggregator.ts) only places
 * checked results and sums them; nothing after validation looks at the wire message again.
 */
import type { ShardKindName } from '@metaloop/shared';

/** The shard kind's one form and its proto mapping live in @metaloop/shared (shard.ts), shared with the worker. */
export { kindFromProto, kindToProto, type ShardKindName } from '@metaloop/shared';

export const REJECT_REASONS = [
  'stale',
  'duplicate',
  'malformed',
  'non_finite',
  'wrong_shape',
  'unknown_run',
  'worker_error',
  /** The worker handed the shard back: its copy of the run's dataset is missing or differs (ShardResult.error_reason "data"). */
  'data_refused',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export type Verdict =
  | { readonly accepted: true; readonly shard: number }
  | { readonly accepted: false; readonly reason: RejectReason; readonly detail: string; readonly shard?: number };

/** A verdict on a result of a run, with its staleness when accepted (async mode). */
export type Offered = Verdict & { readonly staleness?: number };

/** Why a result was refused before it reached any round. */
export interface Invalid {
  readonly reason: RejectReason;
  readonly detail: string;
}

/** Per-k sums of one evaluation shard (each empty when the worker did not send it). */
export interface EvalShardSums {
  /** Σ over the shard's tasks of the query loss after k = 0..K inner steps. */
  readonly loss: readonly number[];
  readonly lossSq: readonly number[];
  readonly accuracy: readonly number[];
  readonly accuracySq: readonly number[];
  /** Meta-RL: Σ return, Σ return², Σ (return after k − return after 0)² (empty for other runs). */
  readonly returns: readonly number[];
  readonly returnSq: readonly number[];
  readonly gainSq: readonly number[];
}

/**
 * A result that passed validation: well-formed for its run (shard in range, task count, gradient
 * layout, finite values), with its payload decoded once. Where it belongs (a round still
 * collecting, not a duplicate) is the round's and collector's to judge.
 */
export interface CheckedResult {
  readonly kind: ShardKindName;
  readonly runId: string;
  readonly step: number;
  readonly shard: number;
  /** The θ version it was computed on. */
  readonly version: number;
  readonly tasks: number;
  readonly workerId: string;
  /** Delivery of the work item (1 = first). */
  readonly delivery: number;
  /** Non-empty: the worker could not compute the shard (a failure of the shard, never summed). */
  readonly error: string;
  /** With `error`: "data" when the worker refused the run's data (missing or another copy), else empty. */
  readonly errorReason: string;
  /**
   * Train: the summed meta-gradient, decoded once — a view on the received bytes, valid while the
   * result is being handled (the collector adds it at once or keeps its own copy).
   */
  readonly grad: Float32Array | null;
  readonly preLossSum: number;
  readonly postLossSum: number;
  /** Meta-RL train: Σ mean episode return of θ's and of the adapted θ′'s rollouts (0 for other runs). */
  readonly preReturnSum: number;
  readonly postReturnSum: number;
  /** Eval: the per-k sums. */
  readonly eval: EvalShardSums | null;
}

/** Counts of rejected results by reason (all zero at first). */
export class RejectCounter {
  private readonly counts = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]));
  add(reason: RejectReason): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }
  get(reason: RejectReason): number {
    return this.counts.get(reason) ?? 0;
  }
  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  toJSON(): Record<RejectReason, number> {
    return Object.fromEntries(this.counts) as Record<RejectReason, number>;
  }
}

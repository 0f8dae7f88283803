/**
 * Result collection for one (run, step, kind): accepts exactly one result per shard, rejects the
 * rest with a reason, and sums accepted results in shard order (never arrival order) in float64,
 * so the sum is bit-identical whatever the number of workers or the order results come back in.
 */
import { layoutSize, metaloop, type TensorSpec } from '@metaloop/shared';
import { checkPayload, type PayloadShape, type Valid } from './validate.js';

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

/** Decode a result message, or say why it is malformed. */
export function decodeResult(
  data: Uint8Array,
  runIdFromSubject?: string,
): { ok: true; result: metaloop.ShardResult } | { ok: false; detail: string } {
  let result: metaloop.ShardResult;
  try {
    result = metaloop.ShardResult.decode(data);
  } catch (err) {
    return { ok: false, detail: `cannot decode ShardResult: ${(err as Error).message}` };
  }
  if (!result.runId) return { ok: false, detail: 'ShardResult without run_id' };
  if (runIdFromSubject !== undefined && runIdFromSubject !== result.runId) {
    return { ok: false, detail: `ShardResult for run ${result.runId} arrived on the subject of run ${runIdFromSubject}` };
  }
  return { ok: true, result };
}

export interface CollectorOptions {
  readonly runId: string;
  readonly step: number;
  readonly paramVersion: number;
  readonly kind: metaloop.ShardKind;
  /** Number of tasks in each shard, in shard order. */
  readonly shardTasks: readonly number[];
  /** Train: the parameter layout gradients must have. */
  readonly layout: readonly TensorSpec[];
  /** Eval: inner steps (the result carries losses after 0..evalInnerSteps steps). */
  readonly evalInnerSteps: number;
  /** A meta-RL run: results carry returns instead of losses (validate.ts). */
  readonly returns?: boolean;
}

interface Accepted {
  readonly grad: Float32Array | null;
  readonly preLossSum: number;
  readonly postLossSum: number;
  readonly evalLossSums: readonly number[];
  /** Eval extras: each empty (the worker did not send it) or one value per k = 0..K. */
  readonly evalLossSqSums: readonly number[];
  readonly evalAccuracySums: readonly number[];
  readonly evalAccuracySqSums: readonly number[];
  /** Meta-RL: train returns; eval returns, their squares and squared gains per k (empty otherwise). */
  readonly preReturnSum: number;
  readonly postReturnSum: number;
  readonly evalReturnSums: readonly number[];
  readonly evalReturnSqSums: readonly number[];
  readonly evalGainSqSums: readonly number[];
  readonly workerId: string;
}

/**
 * An evaluation's sums over all its tasks, in shard order, per k = 0..K: Σ loss, Σ loss², and for
 * classification Σ accuracy, Σ accuracy². A field is null when some shard lacked it (a worker
 * without sums of squares, or a regression family without accuracies).
 */
export interface EvalSums {
  readonly tasks: number;
  readonly loss: Float64Array;
  readonly lossSq: Float64Array | null;
  readonly accuracy: Float64Array | null;
  readonly accuracySq: Float64Array | null;
  /** Meta-RL: Σ return, Σ return², Σ (return after k − return before)² (null for other runs). */
  readonly returns?: Float64Array | null;
  readonly returnSq?: Float64Array | null;
  readonly gainSq?: Float64Array | null;
}

/** Collects the results of one step (train) or one evaluation (eval). */
export class StepCollector {
  private readonly accepted: (Accepted | undefined)[];
  private acceptedCount = 0;
  private readonly paramCount: number;
  private readonly shape: PayloadShape;

  constructor(readonly options: CollectorOptions) {
    this.accepted = new Array<Accepted | undefined>(options.shardTasks.length).fill(undefined);
    this.paramCount = layoutSize(options.layout);
    this.shape = { layout: options.layout, paramCount: this.paramCount, evalInnerSteps: options.evalInnerSteps, returns: options.returns ?? false };
  }

  get shardCount(): number {
    return this.accepted.length;
  }
  get complete(): boolean {
    return this.acceptedCount === this.accepted.length;
  }
  /** Shards still without an accepted result, ascending. */
  missing(): number[] {
    const out: number[] = [];
    this.accepted.forEach((a, i) => {
      if (a === undefined) out.push(i);
    });
    return out;
  }
  has(shard: number): boolean {
    return this.accepted[shard] !== undefined;
  }

  /**
   * Judge one decoded result of this run; accept it when it is the first valid one of its shard.
   * `valid`: what ResultValidator.check() said of it (its payload is then not checked again).
   */
  offer(r: metaloop.ShardResult, valid?: Valid): Verdict {
    const o = this.options;
    const kind = r.kind ?? metaloop.ShardKind.SHARD_KIND_TRAIN;
    if (r.runId !== o.runId) return { accepted: false, reason: 'unknown_run', detail: `result of run ${r.runId}` };
    if (kind !== o.kind || r.step !== o.step || r.paramVersion !== o.paramVersion) {
      return {
        accepted: false,
        reason: 'stale',
        detail: `result for ${kindName(kind)} step ${r.step} (version ${r.paramVersion}); waiting for ${kindName(o.kind)} step ${o.step} (version ${o.paramVersion})`,
      };
    }
    const shard = r.shard;
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.accepted.length) {
      return { accepted: false, reason: 'wrong_shape', detail: `shard ${shard} out of range 0..${this.accepted.length - 1}` };
    }
    if (this.accepted[shard] !== undefined) {
      return { accepted: false, reason: 'duplicate', detail: `shard ${shard} already has a result`, shard };
    }
    if (r.error) return { accepted: false, reason: r.errorReason === 'data' ? 'data_refused' : 'worker_error', detail: r.error, shard };
    // One validation pass a result: the run's validator already checked it (valid), else check here.
    const checked = valid ?? checkPayload(r, o.shardTasks[shard]!, o.kind === metaloop.ShardKind.SHARD_KIND_EVAL, this.shape);
    if (checked.reason !== undefined) return { accepted: false, ...checked, shard };
    // Own the values: the decoded bytes may be a view on a transport buffer that gets reused.
    const grad = checked.grad && Float32Array.from(checked.grad);
    const evalKind = o.kind === metaloop.ShardKind.SHARD_KIND_EVAL;
    const evalLossSums = evalKind ? [...(r.evalLossSums ?? [])] : [];
    const extras = {
      evalLossSqSums: evalKind ? [...(r.evalLossSqSums ?? [])] : [],
      evalAccuracySums: evalKind ? [...(r.evalAccuracySums ?? [])] : [],
      evalAccuracySqSums: evalKind ? [...(r.evalAccuracySqSums ?? [])] : [],
      preReturnSum: r.preReturnSum ?? 0,
      postReturnSum: r.postReturnSum ?? 0,
      evalReturnSums: evalKind ? [...(r.evalReturnSums ?? [])] : [],
      evalReturnSqSums: evalKind ? [...(r.evalReturnSqSums ?? [])] : [],
      evalGainSqSums: evalKind ? [...(r.evalGainSqSums ?? [])] : [],
    };
    this.accepted[shard] = {
      grad,
      preLossSum: r.preLossSum,
      postLossSum: r.postLossSum,
      evalLossSums,
      ...extras,
      workerId: r.workerId,
    };
    this.acceptedCount++;
    return { accepted: true, shard };
  }

  private all(): Accepted[] {
    if (!this.complete) throw new Error(`step ${this.options.step} is missing shards ${this.missing().join(', ')}`);
    return this.accepted as Accepted[];
  }

  /** Σ of the shard gradients, in shard order, in float64. */
  gradientSum(): Float64Array {
    const sum = new Float64Array(this.paramCount);
    for (const a of this.all()) {
      const g = a.grad!;
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + g[i]!;
    }
    return sum;
  }

  /** Σ pre-/post-adaptation query losses over all tasks, in shard order. */
  lossSums(): { pre: number; post: number } {
    return this.pairSums((a) => a.preLossSum, (a) => a.postLossSum);
  }

  /** Meta-RL: Σ returns of θ's and of the adapted θ′'s rollouts over all tasks, in shard order. */
  returnSums(): { pre: number; post: number } {
    return this.pairSums((a) => a.preReturnSum, (a) => a.postReturnSum);
  }

  private pairSums(pre: (a: Accepted) => number, post: (a: Accepted) => number): { pre: number; post: number } {
    const out = { pre: 0, post: 0 };
    for (const a of this.all()) {
      out.pre += pre(a);
      out.post += post(a);
    }
    return out;
  }

  /** Σ eval losses after k = 0..evalInnerSteps inner steps, in shard order. */
  evalLossSums(): Float64Array {
    const out = new Float64Array(this.options.evalInnerSteps + 1);
    for (const a of this.all()) a.evalLossSums.forEach((x, k) => (out[k] = out[k]! + x));
    return out;
  }

  /** Every per-k sum of an evaluation (see EvalSums), each added in shard order in float64. */
  evalSums(): EvalSums {
    const all = this.all();
    const K1 = this.options.evalInnerSteps + 1;
    const sum = (pick: (a: Accepted) => readonly number[]): Float64Array | null => {
      if (!all.every((a) => pick(a).length === K1)) return null;
      const out = new Float64Array(K1);
      for (const a of all) pick(a).forEach((x, k) => (out[k] = out[k]! + x));
      return out;
    };
    return {
      tasks: this.options.shardTasks.reduce((a, b) => a + b, 0),
      loss: this.evalLossSums(),
      lossSq: sum((a) => a.evalLossSqSums),
      accuracy: sum((a) => a.evalAccuracySums),
      accuracySq: sum((a) => a.evalAccuracySqSums),
      ...(this.options.returns ? { returns: sum((a) => a.evalReturnSums), returnSq: sum((a) => a.evalReturnSqSums), gainSq: sum((a) => a.evalGainSqSums) } : {}),
    };
  }

  /** Which worker computed each shard (for logs). */
  workers(): string[] {
    return this.accepted.map((a) => a?.workerId ?? '');
  }
}

function kindName(kind: metaloop.ShardKind): string {
  return kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 'eval' : 'train';
}

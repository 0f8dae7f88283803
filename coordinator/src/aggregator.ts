/**
 * Result collection for one (run, step, kind): places exactly one checked result per shard
 * (validate.ts checked it once), rejects the rest with a reason (stale, duplicate, worker error),
 * and sums accepted gradients in shard order (never arrival order) in float64, so the sum is
 * bit-identical whatever the number of workers or the order results come back in.
 *
 * The sum is formed as results come: the gradient of the next shard in order is added at once
 * (from the received bytes, no copy), one that comes early is copied and added when its turn
 * comes. Either way Σ = (((0 + g₀) + g₁) + …) in float64, in shard order.
 */
import { InvariantError, layoutSize, type TensorSpec } from '@metaloop/shared';
import type { CheckedResult, EvalShardSums, ShardKindName, Verdict } from './result.js';

export interface CollectorOptions {
  readonly runId: string;
  readonly step: number;
  readonly paramVersion: number;
  readonly kind: ShardKindName;
  /** Number of tasks in each shard, in shard order. */
  readonly shardTasks: readonly number[];
  /** Train: the parameter layout gradients have. */
  readonly layout: readonly TensorSpec[];
  /** Eval: inner steps (the result carries losses after 0..evalInnerSteps steps). */
  readonly evalInnerSteps: number;
  /** A meta-RL run: eval sums carry returns (validate.ts). */
  readonly returns?: boolean;
}

interface Placed {
  /** An early gradient's own copy until its turn in the sum; null once added (or for eval). */
  grad: Float32Array | null;
  readonly preLossSum: number;
  readonly postLossSum: number;
  readonly preReturnSum: number;
  readonly postReturnSum: number;
  readonly eval: EvalShardSums | null;
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
  /** Meta-RL: Σ return, Σ return², Σ (return after k − return before)² (absent for other runs). */
  readonly returns?: Float64Array | null;
  readonly returnSq?: Float64Array | null;
  readonly gainSq?: Float64Array | null;
}

/** Collects the results of one step (train) or one evaluation (eval). */
export class StepCollector {
  private readonly placed: (Placed | undefined)[];
  private placedCount = 0;
  /** Σ of the gradients of shards 0..summed-1, in shard order (train). */
  private readonly sum: Float64Array;
  private summed = 0;

  constructor(readonly options: CollectorOptions) {
    this.placed = new Array<Placed | undefined>(options.shardTasks.length).fill(undefined);
    this.sum = new Float64Array(options.kind === 'train' ? layoutSize(options.layout) : 0);
  }

  get shardCount(): number {
    return this.placed.length;
  }
  get complete(): boolean {
    return this.placedCount === this.placed.length;
  }
  /** Shards still without an accepted result, ascending. */
  missing(): number[] {
    const out: number[] = [];
    this.placed.forEach((a, i) => {
      if (a === undefined) out.push(i);
    });
    return out;
  }
  has(shard: number): boolean {
    return this.placed[shard] !== undefined;
  }

  /** Place one checked result of this run; accept it when it is the first of its shard. */
  place(r: CheckedResult): Verdict {
    const o = this.options;
    if (r.kind !== o.kind || r.step !== o.step || r.version !== o.paramVersion) {
      return {
        accepted: false,
        reason: 'stale',
        detail: `result for ${r.kind} step ${r.step} (version ${r.version}); waiting for ${o.kind} step ${o.step} (version ${o.paramVersion})`,
      };
    }
    const shard = r.shard;
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.placed.length) {
      return { accepted: false, reason: 'wrong_shape', detail: `shard ${shard} out of range 0..${this.placed.length - 1}` };
    }
    if (this.placed[shard] !== undefined) {
      return { accepted: false, reason: 'duplicate', detail: `shard ${shard} already has a result`, shard };
    }
    if (r.error) return { accepted: false, reason: r.errorReason === 'data' ? 'data_refused' : 'worker_error', detail: r.error, shard };
    if (o.kind === 'train' && (!r.grad || r.grad.length !== this.sum.length)) {
      return { accepted: false, reason: 'wrong_shape', detail: `gradient of shard ${shard} has ${r.grad?.length ?? 0} values, expected ${this.sum.length}`, shard };
    }
    const inTurn = o.kind === 'train' && shard === this.summed;
    this.placed[shard] = {
      // Its turn: added below from the received bytes. Early: its own copy (the bytes may be reused).
      grad: o.kind === 'train' && !inTurn ? Float32Array.from(r.grad!) : null,
      preLossSum: r.preLossSum,
      postLossSum: r.postLossSum,
      preReturnSum: r.preReturnSum,
      postReturnSum: r.postReturnSum,
      eval: r.eval,
      workerId: r.workerId,
    };
    this.placedCount++;
    if (inTurn) {
      this.add(r.grad!);
      this.summed++;
      // Shards that came early and are now in turn.
      for (let p = this.placed[this.summed]; p !== undefined && this.summed < this.placed.length; p = this.placed[this.summed]) {
        this.add(p.grad!);
        p.grad = null;
        this.summed++;
      }
    }
    return { accepted: true, shard };
  }

  private add(g: Float32Array): void {
    const sum = this.sum;
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + g[i]!;
  }

  private all(): Placed[] {
    if (!this.complete) throw new InvariantError(`step ${this.options.step} is missing shards ${this.missing().join(', ')}`);
    return this.placed as Placed[];
  }

  /** Σ of the shard gradients, in shard order, in float64 (the collector's own array: the caller may scale it). */
  gradientSum(): Float64Array {
    this.all();
    return this.sum;
  }

  /** Σ pre-/post-adaptation query losses over all tasks, in shard order. */
  lossSums(): { pre: number; post: number } {
    return this.pairSums((a) => a.preLossSum, (a) => a.postLossSum);
  }

  /** Meta-RL: Σ returns of θ's and of the adapted θ′'s rollouts over all tasks, in shard order. */
  returnSums(): { pre: number; post: number } {
    return this.pairSums((a) => a.preReturnSum, (a) => a.postReturnSum);
  }

  private pairSums(pre: (a: Placed) => number, post: (a: Placed) => number): { pre: number; post: number } {
    const out = { pre: 0, post: 0 };
    for (const a of this.all()) {
      out.pre += pre(a);
      out.post += post(a);
    }
    return out;
  }

  /** Every per-k sum of an evaluation (see EvalSums), each added in shard order in float64. */
  evalSums(): EvalSums {
    const all = this.all();
    const K1 = this.options.evalInnerSteps + 1;
    const sum = (pick: (e: EvalShardSums) => readonly number[]): Float64Array | null => {
      if (!all.every((a) => a.eval !== null && pick(a.eval).length === K1)) return null;
      const out = new Float64Array(K1);
      for (const a of all) pick(a.eval!).forEach((x, k) => (out[k] = out[k]! + x));
      return out;
    };
    return {
      tasks: this.options.shardTasks.reduce((a, b) => a + b, 0),
      loss: sum((e) => e.loss) ?? new Float64Array(K1),
      lossSq: sum((e) => e.lossSq),
      accuracy: sum((e) => e.accuracy),
      accuracySq: sum((e) => e.accuracySq),
      ...(this.options.returns ? { returns: sum((e) => e.returns), returnSq: sum((e) => e.returnSq), gainSq: sum((e) => e.gainSq) } : {}),
    };
  }

  /** Which worker computed each shard (for logs). */
  workers(): string[] {
    return this.placed.map((a) => a?.workerId ?? '');
  }
}

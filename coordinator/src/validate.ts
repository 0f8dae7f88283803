/**
 * Validation of a decoded result against its run before anything else looks at it: the shard
 * index, task count, gradient layout and finiteness for any step, so a NaN or wrong-shape result is
 * counted as such whether or not its step is the one being collected.
 */
import { allFinite, fromBundle, metaloop, type RunSpec, type TensorSpec } from '@metaloop/shared';
import { shardSizes, type RejectReason } from './aggregator.js';

export interface Invalid {
  readonly reason: RejectReason;
  readonly detail: string;
}

export class ResultValidator {
  private readonly trainSizes: number[];
  private readonly evalSizes: number[];
  private readonly paramCount: number;

  constructor(
    private readonly runId: string,
    private readonly spec: RunSpec,
    private readonly layout: readonly TensorSpec[],
  ) {
    this.trainSizes = shardSizes(spec.outer.metaBatch, spec.outer.shardSize);
    this.evalSizes = shardSizes(spec.eval.tasks, spec.outer.shardSize);
    this.paramCount = layout.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  }

  /** null when the result is well-formed for this run (error results included). */
  check(r: metaloop.ShardResult): Invalid | null {
    if (r.runId !== this.runId) return { reason: 'unknown_run', detail: `result of run ${r.runId}` };
    const evalKind = r.kind === metaloop.ShardKind.SHARD_KIND_EVAL;
    if (!evalKind && r.kind !== metaloop.ShardKind.SHARD_KIND_TRAIN) return { reason: 'malformed', detail: `unknown shard kind ${r.kind}` };
    const sizes = evalKind ? this.evalSizes : this.trainSizes;
    if (!Number.isInteger(r.shard) || r.shard < 0 || r.shard >= sizes.length) {
      return { reason: 'wrong_shape', detail: `shard ${r.shard} out of range 0..${sizes.length - 1}` };
    }
    if (r.step > this.spec.outer.steps || r.paramVersion > r.step) {
      return { reason: 'malformed', detail: `step ${r.step} / version ${r.paramVersion} impossible for a run of ${this.spec.outer.steps} steps` };
    }
    if (r.error) return null;
    if (r.tasks !== sizes[r.shard]) {
      return { reason: 'wrong_shape', detail: `shard ${r.shard} reports ${r.tasks} tasks, expected ${sizes[r.shard]}` };
    }
    if (!evalKind) {
      let grad: Float32Array;
      try {
        grad = fromBundle(r.grad, this.layout).data;
      } catch (err) {
        return { reason: 'wrong_shape', detail: `gradient: ${(err as Error).message}` };
      }
      if (grad.length !== this.paramCount) return { reason: 'wrong_shape', detail: `gradient has ${grad.length} values, expected ${this.paramCount}` };
      if (!allFinite(grad)) return { reason: 'non_finite', detail: `gradient of shard ${r.shard} has NaN/Inf` };
      if (!Number.isFinite(r.preLossSum) || !Number.isFinite(r.postLossSum)) {
        return { reason: 'non_finite', detail: `losses of shard ${r.shard} are not finite` };
      }
    } else {
      const sums = r.evalLossSums ?? [];
      if (sums.length !== this.spec.eval.innerSteps + 1) {
        return { reason: 'wrong_shape', detail: `eval shard ${r.shard} has ${sums.length} losses, expected ${this.spec.eval.innerSteps + 1}` };
      }
      if (!sums.every((x) => Number.isFinite(x))) return { reason: 'non_finite', detail: `eval losses of shard ${r.shard} are not finite` };
    }
    return null;
  }
}

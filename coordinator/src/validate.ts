/**
 * The one validation pass of a result: the run, shard index, task count, and the payload (the
 * gradient decoded and scanned for NaN/Inf once, or the evaluation's sums) for any step, so a NaN or
 * wrong-shape result is counted as such whether or not its step is the one being collected. What
 * passes carries its decoded gradient (`Valid`) into the step collector, which then only judges
 * its place (stale, duplicate, worker error) and never decodes it again.
 */
import { allFinite, fromBundle, isRlTask, layoutSize, metaloop, shardSizes, type RunSpec, type TensorSpec } from '@metaloop/shared';
import type { RejectReason } from './aggregator.js';

export interface Invalid {
  readonly reason: RejectReason;
  readonly detail: string;
}

/** A result that passed validation: its train gradient, decoded once (null for eval and error results). */
export interface Valid {
  readonly reason?: undefined;
  readonly grad: Float32Array | null;
}

/** What a result's payload must look like. */
export interface PayloadShape {
  /** Train: the parameter layout gradients must have. */
  readonly layout: readonly TensorSpec[];
  /** Σ of the layout's sizes. */
  readonly paramCount: number;
  /** Eval: inner steps (the result carries losses after 0..evalInnerSteps steps). */
  readonly evalInnerSteps: number;
  /** A meta-RL run: results carry returns (eval_return_sums, pre/post_return_sum) instead of losses. */
  readonly returns?: boolean;
}

/**
 * Checks the payload of a (non-error) result of shard `r.shard` expecting `tasks` tasks: the task
 * count, then the gradient (decoded and scanned once) and losses of a train result, or the per-k
 * sums of an eval result. Returns the decoded gradient when it passes.
 */
export function checkPayload(r: metaloop.ShardResult, tasks: number, evalKind: boolean, shape: PayloadShape): Invalid | Valid {
  const shard = r.shard;
  if (r.tasks !== tasks) return { reason: 'wrong_shape', detail: `shard ${shard} reports ${r.tasks} tasks, expected ${tasks}` };
  if (!evalKind) {
    let grad: Float32Array;
    try {
      grad = fromBundle(r.grad, shape.layout).data;
    } catch (err) {
      return { reason: 'wrong_shape', detail: `gradient: ${(err as Error).message}` };
    }
    if (grad.length !== shape.paramCount) return { reason: 'wrong_shape', detail: `gradient has ${grad.length} values, expected ${shape.paramCount}` };
    if (!allFinite(grad)) return { reason: 'non_finite', detail: `gradient of shard ${shard} has NaN/Inf` };
    if (!Number.isFinite(r.preLossSum) || !Number.isFinite(r.postLossSum)) {
      return { reason: 'non_finite', detail: `losses of shard ${shard} are not finite` };
    }
    if (!Number.isFinite(r.preReturnSum) || !Number.isFinite(r.postReturnSum)) {
      return { reason: 'non_finite', detail: `returns of shard ${shard} are not finite` };
    }
    return { grad };
  }
  const K = shape.evalInnerSteps;
  const what = shape.returns ? 'returns' : 'losses';
  const sums = (shape.returns ? r.evalReturnSums : r.evalLossSums) ?? [];
  if (sums.length !== K + 1) {
    return { reason: 'wrong_shape', detail: `eval shard ${shard} has ${sums.length} ${what}, expected ${K + 1} (after 0..${K} steps)` };
  }
  if (!sums.every((x) => Number.isFinite(x))) return { reason: 'non_finite', detail: `eval ${what} of shard ${shard} are not finite` };
  const extras = shape.returns ? (['evalReturnSqSums', 'evalGainSqSums'] as const) : (['evalLossSqSums', 'evalAccuracySums', 'evalAccuracySqSums'] as const);
  for (const field of extras) {
    const values = r[field] ?? [];
    if (values.length !== 0 && values.length !== sums.length) {
      return { reason: 'wrong_shape', detail: `eval shard ${shard} has ${values.length} ${field}, expected 0 or ${sums.length}` };
    }
    if (!values.every((x) => Number.isFinite(x))) return { reason: 'non_finite', detail: `${field} of eval shard ${shard} are not finite` };
  }
  return { grad: null };
}

/** Validates the results of one run (any step, either kind) against its spec. */
export class ResultValidator {
  private readonly trainSizes: number[];
  private readonly evalSizes: number[];
  private readonly trainShape: PayloadShape;
  private readonly evalShape: PayloadShape;

  constructor(
    private readonly runId: string,
    private readonly spec: RunSpec,
    layout: readonly TensorSpec[],
  ) {
    this.trainSizes = shardSizes(spec.outer.metaBatch, spec.outer.shardSize);
    this.evalSizes = shardSizes(spec.eval.tasks, spec.outer.shardSize);
    const paramCount = layoutSize(layout);
    const returns = isRlTask(spec.task);
    this.trainShape = { layout, paramCount, evalInnerSteps: 0, returns };
    this.evalShape = { layout, paramCount, evalInnerSteps: spec.eval.innerSteps, returns };
  }

  /** Valid (with the decoded gradient) when the result is well-formed for this run (error results included), else why not. */
  check(r: metaloop.ShardResult): Invalid | Valid {
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
    if (r.error) return { grad: null };
    return checkPayload(r, sizes[r.shard]!, evalKind, evalKind ? this.evalShape : this.trainShape);
  }
}

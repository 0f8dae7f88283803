/**
 * The one intake of a result: decoded once (`decodeResult`), then validated once
 * (`ResultValidator.check`) against its run — the run, kind, shard index, step and version, task
 * count, and the payload (the gradient decoded and scanned for NaN/Inf once, or the evaluation's
 * sums) — for any step, so a NaN or wrong-shape result is counted as such whether or not its step
 * is the one being collected. What passes is a typed `CheckedResult` (result.ts); the round and
 * its collector only judge its place (stale, duplicate, worker error) and sum it.
 */
import { allFinite, fromBundle, isRlTask, layoutSize, metaloop, shardSizes, type RunSpec, type TensorSpec } from '@metaloop/shared';
import { kindFromProto, type CheckedResult, type Invalid, type ShardKindName } from './result.js';

/** Decode a result message, or say why it is malformed. */
export function decodeResult(
  data: Uint8Array,
  runIdFromSubject?: string,
): { ok: true; result: metaloop.ShardResult } | { ok: false; detail: string } {
  if (data.byteLength === 0) return { ok: false, detail: 'empty result message' };
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

/** What the results of one run must look like. */
export interface ResultShape {
  readonly runId: string;
  /** The run's outer.steps (no step or version beyond it). */
  readonly steps: number;
  /** Tasks of each train shard, in shard order. */
  readonly trainShards: readonly number[];
  /** Tasks of each eval shard, in shard order. */
  readonly evalShards: readonly number[];
  /** The parameter layout train gradients must have. */
  readonly layout: readonly TensorSpec[];
  /** Eval: inner steps (results carry losses after 0..evalInnerSteps steps). */
  readonly evalInnerSteps: number;
  /** A meta-RL run: results carry returns (pre/post_return_sum, eval_return_sums) instead of losses (absent: false). */
  readonly returns?: boolean;
}

/** The shape of a run's results from its spec (the shard sizes as run-shards.ts cuts them). */
export function resultShape(runId: string, spec: RunSpec, layout: readonly TensorSpec[]): ResultShape {
  return {
    runId,
    steps: spec.outer.steps,
    trainShards: shardSizes(spec.outer.metaBatch, spec.outer.shardSize),
    evalShards: shardSizes(spec.eval.tasks, spec.outer.shardSize),
    layout,
    evalInnerSteps: spec.eval.innerSteps,
    returns: isRlTask(spec.task),
  };
}

/** A result refused by validation; `kind` when its kind is known (its round can count the failure). */
export type Rejected = Invalid & { readonly kind?: ShardKindName };

/** Validates the results of one run (any step, either kind). */
export class ResultValidator {
  private readonly paramCount: number;

  constructor(private readonly shape: ResultShape) {
    this.paramCount = layoutSize(shape.layout);
  }

  /** The checked result (error results included), or why it is refused. */
  check(r: metaloop.ShardResult): CheckedResult | Rejected {
    const s = this.shape;
    if (r.runId !== s.runId) return { reason: 'unknown_run', detail: `result of run ${r.runId}` };
    const kind = kindFromProto(r.kind);
    if (kind === null) return { reason: 'malformed', detail: `unknown shard kind ${r.kind}` };
    const sizes = kind === 'eval' ? s.evalShards : s.trainShards;
    if (!Number.isInteger(r.shard) || r.shard < 0 || r.shard >= sizes.length) {
      return { kind, reason: 'wrong_shape', detail: `shard ${r.shard} out of range 0..${sizes.length - 1}` };
    }
    if (r.step > s.steps || r.paramVersion > r.step) {
      return { kind, reason: 'malformed', detail: `step ${r.step} / version ${r.paramVersion} impossible for a run of ${s.steps} steps` };
    }
    const head = {
      kind,
      runId: r.runId,
      step: r.step,
      shard: r.shard,
      version: r.paramVersion,
      tasks: r.tasks,
      workerId: r.workerId,
      delivery: r.delivery,
      error: r.error,
      errorReason: r.error ? r.errorReason : '',
      grad: null,
      preLossSum: r.preLossSum,
      postLossSum: r.postLossSum,
      preReturnSum: r.preReturnSum ?? 0,
      postReturnSum: r.postReturnSum ?? 0,
      eval: null,
    };
    if (r.error) return head;
    const tasks = sizes[r.shard]!;
    if (r.tasks !== tasks) return { kind, reason: 'wrong_shape', detail: `shard ${r.shard} reports ${r.tasks} tasks, expected ${tasks}` };
    return kind === 'train' ? this.train(r, head) : this.eval(r, head);
  }

  private train(r: metaloop.ShardResult, head: CheckedResult): CheckedResult | Rejected {
    const shard = r.shard;
    let grad: Float32Array;
    try {
      grad = fromBundle(r.grad, this.shape.layout).data;
    } catch (err) {
      return { kind: 'train', reason: 'wrong_shape', detail: `gradient: ${(err as Error).message}` };
    }
    if (grad.length !== this.paramCount) return { kind: 'train', reason: 'wrong_shape', detail: `gradient has ${grad.length} values, expected ${this.paramCount}` };
    if (!allFinite(grad)) return { kind: 'train', reason: 'non_finite', detail: `gradient of shard ${shard} has NaN/Inf` };
    if (!Number.isFinite(r.preLossSum) || !Number.isFinite(r.postLossSum)) {
      return { kind: 'train', reason: 'non_finite', detail: `losses of shard ${shard} are not finite` };
    }
    if (!Number.isFinite(r.preReturnSum) || !Number.isFinite(r.postReturnSum)) {
      return { kind: 'train', reason: 'non_finite', detail: `returns of shard ${shard} are not finite` };
    }
    return { ...head, grad };
  }

  private eval(r: metaloop.ShardResult, head: CheckedResult): CheckedResult | Rejected {
    const shard = r.shard;
    const K = this.shape.evalInnerSteps;
    // A meta-RL run's evaluation carries returns, other runs' losses: the per-k list that must be there.
    const what = this.shape.returns === true ? 'returns' : 'losses';
    const sums = (this.shape.returns === true ? r.evalReturnSums : r.evalLossSums) ?? [];
    if (sums.length !== K + 1) {
      return { kind: 'eval', reason: 'wrong_shape', detail: `eval shard ${shard} has ${sums.length} ${what}, expected ${K + 1} (after 0..${K} steps)` };
    }
    if (!sums.every((x) => Number.isFinite(x))) return { kind: 'eval', reason: 'non_finite', detail: `eval ${what} of shard ${shard} are not finite` };
    const extras = this.shape.returns === true ? (['evalReturnSqSums', 'evalGainSqSums'] as const) : (['evalLossSqSums', 'evalAccuracySums', 'evalAccuracySqSums'] as const);
    for (const field of extras) {
      const values = r[field] ?? [];
      if (values.length !== 0 && values.length !== sums.length) {
        return { kind: 'eval', reason: 'wrong_shape', detail: `eval shard ${shard} has ${values.length} ${field}, expected 0 or ${sums.length}` };
      }
      if (!values.every((x) => Number.isFinite(x))) return { kind: 'eval', reason: 'non_finite', detail: `${field} of eval shard ${shard} are not finite` };
    }
    const own = (x: readonly number[] | null | undefined): readonly number[] => x ?? [];
    return {
      ...head,
      eval: this.shape.returns
        ? { loss: [], lossSq: [], accuracy: [], accuracySq: [], returns: sums, returnSq: own(r.evalReturnSqSums), gainSq: own(r.evalGainSqSums) }
        : { loss: sums, lossSq: own(r.evalLossSqSums), accuracy: own(r.evalAccuracySums), accuracySq: own(r.evalAccuracySqSums), returns: [], returnSq: [], gainSq: [] },
    };
  }
}

/** True for a checked result, false for a rejection. */
export function isChecked(x: CheckedResult | Rejected): x is CheckedResult {
  return (x as Rejected).reason === undefined;
}

/** Run states, run records, eval summaries and checkpoints: encoding helpers of the coordinator. */
import { createHash } from 'node:crypto';
import { fromBundle, metaloop, toBundle, type TensorSpec } from '@metaloop/shared';
import type { EvalSums } from './aggregator.js';
import type { OptimizerState } from './optimizer.js';

export const RUN_STATES = ['pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStateName = (typeof RUN_STATES)[number];

const TO_PROTO: Record<RunStateName, metaloop.RunState> = {
  pending: metaloop.RunState.RUN_STATE_PENDING,
  running: metaloop.RunState.RUN_STATE_RUNNING,
  paused: metaloop.RunState.RUN_STATE_PAUSED,
  succeeded: metaloop.RunState.RUN_STATE_SUCCEEDED,
  failed: metaloop.RunState.RUN_STATE_FAILED,
  cancelled: metaloop.RunState.RUN_STATE_CANCELLED,
};

export function stateToProto(state: RunStateName): metaloop.RunState {
  return TO_PROTO[state];
}

export function stateFromProto(state: metaloop.RunState | null | undefined): RunStateName | 'unspecified' {
  for (const name of RUN_STATES) if (TO_PROTO[name] === state) return name;
  return 'unspecified';
}

export function isTerminal(state: RunStateName | 'unspecified'): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

/** sha256 (hex) of the float32 bytes of θ. */
export function paramsSha256(params: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength))
    .digest('hex');
}

/**
 * Half-width of the 95% confidence interval of a mean over n values from their sum and sum of
 * squares: 1.96·s/√n with s the sample standard deviation (0 when n < 2).
 */
export function ci95FromSums(sum: number, sumSq: number, n: number): number {
  if (n < 2) return 0;
  const variance = Math.max(0, (sumSq - (sum * sum) / n) / (n - 1));
  return (1.96 * Math.sqrt(variance)) / Math.sqrt(n);
}

/**
 * EvalSummary from the summed held-out losses after k = 0..K inner steps: pre_loss (k = 0) and
 * post_loss after 1 and after K steps (only [1] when K = 1). Given an evaluation's EvalSums
 * (StepCollector.evalSums) it also reports, at the same inner steps, the mean accuracy
 * (classification) and 95% CIs: `ci95` of the headline metric (accuracy for classification,
 * post_loss for regression), `lossCi95` of post_loss, `preLossCi95`.
 */
export function evalSummary(step: number, tasks: number, sums: Float64Array | EvalSums): metaloop.IEvalSummary {
  const lossSums = sums instanceof Float64Array ? sums : sums.loss;
  const k = lossSums.length - 1;
  const innerSteps = k > 1 ? [1, k] : [1];
  const summary: metaloop.IEvalSummary = {
    step,
    tasks,
    innerSteps,
    preLoss: lossSums[0]! / tasks,
    postLoss: innerSteps.map((s) => lossSums[s]! / tasks),
  };
  if (sums instanceof Float64Array) return summary;
  const { lossSq, accuracy, accuracySq } = sums;
  if (accuracy) summary.accuracy = innerSteps.map((s) => accuracy[s]! / tasks);
  if (lossSq) {
    summary.lossCi95 = innerSteps.map((s) => ci95FromSums(lossSums[s]!, lossSq[s]!, tasks));
    summary.preLossCi95 = ci95FromSums(lossSums[0]!, lossSq[0]!, tasks);
  }
  if (accuracy && accuracySq) summary.ci95 = innerSteps.map((s) => ci95FromSums(accuracy[s]!, accuracySq[s]!, tasks));
  else if (!accuracy && summary.lossCi95) summary.ci95 = [...summary.lossCi95];
  return summary;
}

// ---- checkpoints ----
// TensorBundles carry float32. Adam's float64 moments are stored losslessly as their raw
// little-endian float64 bytes, in one tensor named `float64` of shape [2n] (bytes pass through the
// codec untouched), so a resumed run continues bit for bit.

const F64_TENSOR = 'float64';

function float64Bundle(values: Float64Array): metaloop.ITensorBundle {
  const bytes = new Uint8Array(values.byteLength);
  bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { tensors: [{ name: F64_TENSOR, shape: [values.length * 2] }], data: bytes };
}

function fromFloat64Bundle(bundle: metaloop.ITensorBundle | null | undefined, expected: number): Float64Array {
  const tensors = bundle?.tensors ?? [];
  const data = bundle?.data ?? new Uint8Array(0);
  if (tensors.length !== 1 || tensors[0]?.name !== F64_TENSOR || data.byteLength !== expected * 8) {
    throw new Error(`checkpoint optimizer state: expected ${expected} float64 values`);
  }
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return new Float64Array(copy.buffer);
}

export interface CheckpointData {
  readonly runId: string;
  readonly step: number;
  readonly specJson: string;
  readonly params: Float32Array;
  readonly optimizer: OptimizerState;
  readonly createdMs: number;
  /** Task sampler state (JSON), see samplerState(). */
  readonly sampler?: string;
}

export function encodeCheckpoint(c: CheckpointData, layout: readonly TensorSpec[]): Uint8Array {
  return metaloop.Checkpoint.encode({
    runId: c.runId,
    step: c.step,
    specJson: c.specJson,
    params: toBundle({ layout, data: c.params }),
    adamM: float64Bundle(c.optimizer.m),
    adamV: float64Bundle(c.optimizer.v),
    adamT: c.optimizer.t,
    createdMs: c.createdMs,
    samplerJson: c.sampler ?? '',
  }).finish();
}

export function decodeCheckpoint(
  bytes: Uint8Array,
  layout: readonly TensorSpec[],
  optimizer: 'adam' | 'sgd',
): CheckpointData {
  const c = metaloop.Checkpoint.decode(bytes);
  const params = Float32Array.from(fromBundle(c.params, layout).data);
  const n = optimizer === 'adam' ? params.length : 0;
  return {
    runId: c.runId,
    step: c.step,
    specJson: c.specJson,
    params,
    optimizer: {
      kind: optimizer,
      t: c.adamT,
      m: fromFloat64Bundle(c.adamM, n),
      v: fromFloat64Bundle(c.adamV, n),
    },
    createdMs: c.createdMs,
    sampler: c.samplerJson,
  };
}

/**
 * The task sampler's state at `step`: tasks come from seed = hash(run seed, domain, step, index),
 * so the seed and the next step are all it has (held-out tasks are fixed: domain 'eval', step 0).
 */
export function samplerState(seed: number, step: number): string {
  return JSON.stringify({ kind: 'seed-hash', seed, step, evalStep: 0 });
}

/** Run states, run records and eval summaries: encoding helpers of the coordinator (checkpoints: checkpoint.ts). */
import { createHash } from 'node:crypto';
import { metaloop } from '@metaloop/shared';

/** The run state names are the protocol's (shared/src/run-states.ts); re-exported for the coordinator's files. */
export { isTerminal, RUN_STATES, stateFromProto, stateToProto, type RunStateName } from '@metaloop/shared';
import type { EvalSums } from './aggregator.js';

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
  if (!(sums instanceof Float64Array) && sums.returns) return returnSummary(step, tasks, sums.returns, sums.returnSq ?? null, sums.gainSq ?? null);
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

/**
 * EvalSummary of a meta-RL evaluation (docs/meta-rl.md) from Σ return after k = 0..K inner steps:
 * pre_return (k = 0) and post_return after every k = 1..K, their 95% CIs, and the paired gain
 * mean(R_k − R_0) with its CI 1.96·s/√n over the tasks' differences (Σ (R_k − R_0)² from the
 * workers, Σ (R_k − R_0) = Σ R_k − Σ R_0). `ci95` is the headline metric's: post_return's.
 */
export function returnSummary(step: number, tasks: number, returns: Float64Array, returnSq: Float64Array | null, gainSq: Float64Array | null): metaloop.IEvalSummary {
  const K = returns.length - 1;
  const innerSteps = Array.from({ length: K }, (_, i) => i + 1);
  const summary: metaloop.IEvalSummary = {
    step,
    tasks,
    innerSteps,
    preReturn: returns[0]! / tasks,
    postReturn: innerSteps.map((k) => returns[k]! / tasks),
    gain: innerSteps.map((k) => (returns[k]! - returns[0]!) / tasks),
  };
  if (returnSq) {
    summary.preReturnCi95 = ci95FromSums(returns[0]!, returnSq[0]!, tasks);
    summary.returnCi95 = innerSteps.map((k) => ci95FromSums(returns[k]!, returnSq[k]!, tasks));
    summary.ci95 = [...summary.returnCi95];
  }
  if (gainSq) summary.gainCi95 = innerSteps.map((k) => ci95FromSums(returns[k]! - returns[0]!, gainSq[k]!, tasks));
  return summary;
}

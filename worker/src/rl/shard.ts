/**
 * The meta-RL branch of computeShard (engine.ts dispatches every run of an RL family here): tasks
 * one by one on the host (maml-rl.ts), no tfjs, so θ is the same on every backend.
 *
 * As on the supervised paths, each task's row is computed in float64, rounded to float32, and
 * the rows are summed in float64 in task order (then rounded once), so a shard's result depends
 * only on the spec, θ and its seeds. Eval shards also return, per k, Σ R_k² and Σ (R_k − R_0)²
 * over tasks: the coordinator's 95% CIs of the return and of the paired gain from adaptation.
 */
import type { RlTaskSpec, RunSpec } from '@metaloop/shared';
import type { ComputeShardOptions, EvalShardResult, ShardComputation, ShardWork, TrainShardResult } from '../engine.js';
import { ShardAbortedError } from '../errors.js';
import { rlPlan, RlTaskComputer, type RlPlan } from './maml-rl.js';

const plans = new WeakMap<RunSpec, RlPlan>();

/** The plan of a meta-RL spec, built once per spec object (throws when the spec cannot be computed). */
export function compileRlRun(spec: RunSpec, task: RlTaskSpec): RlPlan {
  let p = plans.get(spec);
  if (!p) plans.set(spec, (p = rlPlan(spec, task)));
  return p;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function computeRlShard(spec: RunSpec, task: RlTaskSpec, params: Float32Array, shard: ShardWork, options: ComputeShardOptions = {}): Promise<ShardComputation> {
  const host = new RlTaskComputer(compileRlRun(spec, task), params);
  const seeds = shard.taskSeeds;
  const steps = shard.evalInnerSteps ?? spec.eval.innerSteps;
  if (shard.kind === 'eval' && !(Number.isInteger(steps) && steps >= 0)) {
    throw new RangeError(`evalInnerSteps must be a whole number >= 0, got ${steps}`);
  }
  const train = shard.kind === 'train';
  const width = train ? host.trainWidth : steps + 1;
  const row = new Float64Array(width);
  const acc = new Float64Array(width);
  const sq = new Float64Array(train ? 0 : width);
  const gainSq = new Float64Array(train ? 0 : width);
  const yieldEveryMs = options.yieldEveryMs ?? 25;
  let lastYield = performance.now();
  for (let done = 0; done < seeds.length; ) {
    if (options.signal?.aborted) throw new ShardAbortedError(done);
    if (train) host.trainRow(seeds[done]!, row);
    else host.evalRow(seeds[done]!, steps, row);
    const r = Float32Array.from(row);
    for (let j = 0; j < width; j++) acc[j]! += r[j]!;
    if (!train) {
      for (let j = 0; j < width; j++) {
        sq[j]! += r[j]! * r[j]!;
        const gain = r[j]! - r[0]!;
        gainSq[j]! += gain * gain;
      }
    }
    done++;
    options.onTask?.(done, seeds.length);
    if (done < seeds.length && performance.now() - lastYield >= yieldEveryMs) {
      await yieldToLoop();
      lastYield = performance.now();
    }
  }
  const P = host.trainWidth - 2;
  if (train) {
    return { kind: 'train', grad: Float32Array.from(acc.subarray(0, P)), preLossSum: 0, postLossSum: 0, preReturnSum: acc[P]!, postReturnSum: acc[P + 1]!, tasks: seeds.length };
  }
  return {
    kind: 'eval',
    evalLossSums: [],
    evalLossSqSums: [],
    evalReturnSums: Array.from(acc),
    evalReturnSqSums: Array.from(sq),
    evalGainSqSums: Array.from(gainSq),
    tasks: seeds.length,
  };
}

/** What the worker logs as a meta-RL run's compute path (and the check that the spec can be computed). */
export function rlComputePath(spec: RunSpec, task: RlTaskSpec): { path: 'rl-host'; plan: RlPlan } {
  return { path: 'rl-host', plan: compileRlRun(spec, task) };
}

/** The ShardResult fields of a meta-RL train computation (none for other runs). */
export function rlTrainFields(r: TrainShardResult): { preReturnSum?: number; postReturnSum?: number } {
  return r.preReturnSum === undefined ? {} : { preReturnSum: r.preReturnSum, postReturnSum: r.postReturnSum ?? 0 };
}

/** The ShardResult fields of a meta-RL eval computation (none for other runs). */
export function rlEvalFields(r: EvalShardResult): { evalReturnSums?: number[]; evalReturnSqSums?: number[]; evalGainSqSums?: number[] } {
  return r.evalReturnSums === undefined ? {} : { evalReturnSums: r.evalReturnSums, evalReturnSqSums: r.evalReturnSqSums ?? [], evalGainSqSums: r.evalGainSqSums ?? [] };
}

/**
 * The rounds of a run as data: the collector and the Shard messages of a train step (seeds of the
 * 'train' domain at step u, computed on θ_version) and of an evaluation (the same held-out tasks
 * every time: seeds of the 'eval' domain, step 0, computed on θ_t). Pure; RunLoop issues them.
 */
import { isRlTask, metaloop, shardSizes, shardTaskSeeds, type RunSpec, type TensorSpec } from '@metaloop/shared';
import { StepCollector } from './aggregator.js';

export interface RoundPlan {
  readonly collector: StepCollector;
  /** The Shard message of shard i (without attempt information). */
  readonly shard: (i: number) => metaloop.IShard;
}

/** The shards of train step u, computed on θ_version (version < u only in async mode). */
export function trainRound(runId: string, spec: RunSpec, layout: TensorSpec[], u: number, version: number): RoundPlan {
  const { metaBatch, shardSize } = spec.outer;
  const sizes = shardSizes(metaBatch, shardSize);
  const collector = new StepCollector({
    runId,
    step: u,
    paramVersion: version,
    kind: 'train',
    shardTasks: sizes,
    layout,
    evalInnerSteps: 0,
    returns: isRlTask(spec.task),
  });
  return {
    collector,
    shard: (i) => ({
      runId,
      step: u,
      shard: i,
      paramVersion: version,
      kind: metaloop.ShardKind.SHARD_KIND_TRAIN,
      taskSeeds: shardTaskSeeds(spec.seed, 'train', u, i, shardSize, sizes[i]!),
      metaBatch,
    }),
  };
}

/** The shards of the evaluation at step t (on θ_t). */
export function evalRound(runId: string, spec: RunSpec, layout: TensorSpec[], t: number): RoundPlan {
  const { tasks, innerSteps } = spec.eval;
  const shardSize = spec.outer.shardSize;
  const sizes = shardSizes(tasks, shardSize);
  const collector = new StepCollector({
    runId,
    step: t,
    paramVersion: t,
    kind: 'eval',
    shardTasks: sizes,
    layout,
    evalInnerSteps: innerSteps,
    returns: isRlTask(spec.task),
  });
  return {
    collector,
    shard: (i) => ({
      runId,
      step: t,
      shard: i,
      paramVersion: t,
      kind: metaloop.ShardKind.SHARD_KIND_EVAL,
      // The same held-out tasks at every evaluation: seeds of the 'eval' domain, step 0.
      taskSeeds: shardTaskSeeds(spec.seed, 'eval', 0, i, shardSize, sizes[i]!),
      evalInnerSteps: innerSteps,
      metaBatch: tasks,
    }),
  };
}

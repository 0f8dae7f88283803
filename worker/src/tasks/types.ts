import type { RunSpec } from '@metaloop/shared';

/** How predictions are scored: mean squared error, or softmax cross-entropy on one-hot targets. */
export type LossKind = 'mse' | 'xent';

/** A set of examples as plain row-major float32 data (the engine turns it into tensors). */
export interface Examples {
  /** Inputs, shape [n, ...inputShape]. */
  readonly x: Float32Array;
  /** Targets, shape [n, outputs] (regression values or one-hot labels). */
  readonly y: Float32Array;
  readonly n: number;
}

/**
 * Which classes a task is drawn from: meta-train (training tasks), meta-val or meta-test (held-out
 * evaluation). Families without classes (sinusoid) ignore it; their held-out tasks come from seeds.
 */
export type Split = 'train' | 'val' | 'test';

/** One task: K support examples to adapt on, Q query examples to score the adapted model. */
export interface TaskData {
  readonly support: Examples;
  readonly query: Examples;
}

/**
 * A family of tasks. `sample(seed, split)` must be a pure function of its arguments (shared's `Rng`,
 * never `Math.random` nor unseeded `tf.random*`): workers rebuild a shard's tasks from seeds alone.
 * `split` defaults to 'train'; evaluation passes the held-out split ('test' or 'val').
 */
export interface TaskFamily {
  readonly family: string;
  readonly loss: LossKind;
  /** Shape of one input example (without the batch dimension), e.g. [1] or [28, 28, 1]. */
  readonly inputShape: readonly number[];
  readonly outputs: number;
  /**
   * `into`: a task this family drew before that nobody reads any more; a family may write the new
   * task into its arrays (same sizes) instead of allocating. The result is the same either way.
   */
  sample(seed: number, split?: Split, into?: TaskData): TaskData;
  /**
   * Families that read from disk asynchronously (image folders) make the data of these tasks ready
   * here; the engine awaits it before drawing a shard's tasks. Pure like sample(): it only loads.
   */
  prepare?(seeds: readonly number[], split?: Split): Promise<void>;
}

export type TaskFamilyFactory = (spec: RunSpec) => TaskFamily;

import type * as tf from '@tensorflow/tfjs-core';
import type { RunSpec, TensorSpec } from '@metaloop/shared';

/** Parameters by name (`l0.w`, `l0.b`, …), as `paramLayout(spec)` names them. */
export type NamedTensors = Record<string, tf.Tensor>;

/**
 * A functional model: no state, parameters passed in, so an inner loop can differentiate through
 * its own updates. `forward` must only use ops with registered (and differentiable) gradients.
 */
export interface Model {
  readonly kind: string;
  /** The tensors this model reads, identical to `modelLayout(spec)` (θ may carry algorithm extras after them). */
  readonly layout: readonly TensorSpec[];
  /**
   * True when `forward` also accepts a leading task dimension T on everything: parameters
   * [T, ...shape] (one copy of θ per task) and inputs [T, N, ...inputShape], returning [T, N, outputs].
   * The engine then runs a whole shard's tasks in one pass (far fewer kernel launches per task).
   */
  readonly taskBatched?: boolean;
  forward(params: NamedTensors, x: tf.Tensor): tf.Tensor;
}

export type ModelFactory = (spec: RunSpec) => Model;

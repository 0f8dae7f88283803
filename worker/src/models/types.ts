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
  /** The parameter layout this model reads, identical to `paramLayout(spec)`. */
  readonly layout: readonly TensorSpec[];
  forward(params: NamedTensors, x: tf.Tensor): tf.Tensor;
}

export type ModelFactory = (spec: RunSpec) => Model;

/**
 * Which of the worker's own native kernels (../kernels/tensorflow) the active backend has, and how
 * gradient configs and ops run them. They are registered only on tfjs-node with TensorFlow on a CPU
 * (where they were measured); everywhere else the composites of tfjs ops stay, with the results
 * they always had.
 */
import * as tf from '@tensorflow/tfjs-core';

/** True when the active backend has a kernel registered under `name`. */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * Run a kernel through the engine (recorded on the active tape). Attributes may hold tensors: the
 * kernels take the inputs a gradient is piecewise constant in (a ReLU's or a pool's input, batch
 * statistics) as attributes, so that a tape treats them as constants.
 */
export function runNative(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor {
  return tf.engine().runKernel<tf.Tensor>(name, inputs, attrs as tf.NamedAttrMap);
}

/** runNative for a kernel with several outputs. */
export function runNativeMulti(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor[] {
  return tf.engine().runKernel<tf.Tensor[]>(name, inputs, attrs as tf.NamedAttrMap);
}

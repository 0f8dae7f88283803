/**
 * Kernels a tfjs backend may register that a layer's forward runs instead of its composite of tfjs
 * ops: the same maths as one kernel, with exact first and second derivatives registered beside it.
 * The worker registers them only where they were measured to pay (tfjs-node with TensorFlow on a
 * CPU: worker/src/kernels/tensorflow); on every other backend the composite runs, with the results
 * it always had. A layer asks the backend in hand, so presets and user graphs gain alike.
 */
import type { Tensor, Tf } from './types.js';

/**
 * Training-mode batch norm: inputs x (float32, any rank ≥ 2), scale and offset ([C]); attribute
 * epsilon; outputs y, the batch mean and the biased batch variance over every axis but the last.
 */
export const FUSED_BATCH_NORM = 'MetaloopBatchNorm';

/** True when the active backend has a kernel registered under `name`. */
export function hasFusedKernel(tf: Tf, name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** Batch norm over every axis but the last as the fused kernel, or undefined where it does not apply. */
export function fusedBatchNorm(tf: Tf, x: Tensor, epsilon: number, scale: Tensor | undefined, offset: Tensor | undefined): Tensor | undefined {
  if (!scale || !offset || x.dtype !== 'float32' || scale.rank !== 1 || offset.rank !== 1 || !hasFusedKernel(tf, FUSED_BATCH_NORM)) return undefined;
  return tf.engine().runKernel<Tensor[]>(FUSED_BATCH_NORM, { x, scale, offset }, { epsilon })[0];
}

/**
 * One SGD step of every parameter, θ_i − lr·g_i, differentiable in θ and g (second-order MAML).
 * With a constant rate (a number) on a backend that has the fused kernel (tensorflow on a CPU):
 * one kernel for all parameters (../kernels/tensorflow/sgd-step.ts), bitwise the tfjs ops;
 * otherwise, or with a rate tensor (which may be learned), tf.sub(θ_i, tf.mul(lr, g_i)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { SGD_STEP } from '../kernels/tensorflow/sgd-step.js';
import { hasKernel, runNativeMulti } from '../gradients/native-kernels.js';

export function sgdStep(params: readonly tf.Tensor[], grads: readonly tf.Tensor[], lr: number | tf.Tensor): tf.Tensor[] {
  const fused = typeof lr === 'number' && params.length > 0 && hasKernel(SGD_STEP) && [...params, ...grads].every((t) => t.dtype === 'float32');
  if (!fused) {
    const rate = typeof lr === 'number' ? tf.scalar(lr) : lr;
    return params.map((p, i) => tf.sub(p, tf.mul(rate, grads[i]!)));
  }
  const inputs: tf.NamedTensorMap = {};
  params.forEach((p, i) => {
    inputs[`p${i}`] = p;
    inputs[`g${i}`] = grads[i]!;
  });
  return runNativeMulti(SGD_STEP, inputs, { lr, n: params.length });
}

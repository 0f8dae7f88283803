/**
 * Gradients of the fused SGD update (../kernels/tensorflow/sgd-step.ts): θ'_i = θ_i − lr·g_i gives
 * ∂/∂θ_i = dy_i (a clone) and ∂/∂g_i = (−dy_i)·lr, upstream's Sub and Multiply gradients bitwise
 * (lr is a constant). The latter for every i in one MetaloopSgdStepGrad kernel, linear in dy, so
 * its own gradient is the same kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SGD_STEP, SGD_STEP_GRAD, type SgdStepAttrs } from '../kernels/tensorflow/sgd-step.js';
import { runNativeMulti } from './native-kernels.js';

function sgdGradients(dys: tf.Tensor | tf.Tensor[], attrs: SgdStepAttrs): tf.Tensor[] {
  const list = Array.isArray(dys) ? dys : [dys];
  const inputs: tf.NamedTensorMap = {};
  list.forEach((dy, i) => (inputs[`dy${i}`] = dy));
  return runNativeMulti(SGD_STEP_GRAD, inputs, attrs);
}

export const sgdStepGradConfig: tf.GradConfig = {
  kernelName: SGD_STEP,
  gradFunc: (dys, _saved, attrs) => {
    const a = attrs as unknown as SgdStepAttrs;
    const list = Array.isArray(dys) ? dys : [dys];
    const dg = sgdGradients(list, a);
    const out: Record<string, () => tf.Tensor> = {};
    for (let i = 0; i < a.n; i++) {
      out[`p${i}`] = () => tf.clone(list[i]!);
      out[`g${i}`] = () => dg[i]!;
    }
    return out;
  },
};

export const sgdStepGradGradConfig: tf.GradConfig = {
  kernelName: SGD_STEP_GRAD,
  gradFunc: (dys, _saved, attrs) => {
    const a = attrs as unknown as SgdStepAttrs;
    const g = sgdGradients(dys, a);
    const out: Record<string, () => tf.Tensor> = {};
    for (let i = 0; i < a.n; i++) out[`dy${i}`] = () => g[i]!;
    return out;
  },
};

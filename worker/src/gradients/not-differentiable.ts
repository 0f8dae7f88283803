/**
 * Zero gradients for comparison and logical kernels. Their outputs are booleans, so their gradient
 * is zero; TF.js 4.22 registers one only for GreaterEqual. First-order backprop never reaches them,
 * but the gradients of max/min (Equal), logSumExp, leakyRelu/prelu/selu (Greater), relu6 (LessEqual),
 * clipByValue (LogicalAnd), where(...) masks etc. are built from them, so differentiating those
 * gradients again (second-order MAML) throws "gradient function not found for Equal" and the like.
 * One config factory for the family: the configs differ only by kernel name and input names.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';

function zeroGrad(kernelName: string, inputNames: readonly string[]): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: [...inputNames],
    gradFunc: (_dy, saved) => {
      const out: Record<string, () => tf.Tensor> = {};
      inputNames.forEach((name, i) => {
        const t = saved[i];
        if (t === undefined) throw new KernelSetupError(`${kernelName} gradient: saved input ${name} missing`);
        out[name] = () => tf.zeros(t.shape, 'float32');
      });
      return out;
    },
  };
}

export const equalGradConfig = zeroGrad(tf.Equal, ['a', 'b']);
export const notEqualGradConfig = zeroGrad(tf.NotEqual, ['a', 'b']);
export const greaterGradConfig = zeroGrad(tf.Greater, ['a', 'b']);
export const lessGradConfig = zeroGrad(tf.Less, ['a', 'b']);
export const lessEqualGradConfig = zeroGrad(tf.LessEqual, ['a', 'b']);
export const logicalAndGradConfig = zeroGrad(tf.LogicalAnd, ['a', 'b']);
export const logicalOrGradConfig = zeroGrad(tf.LogicalOr, ['a', 'b']);
export const logicalNotGradConfig = zeroGrad(tf.LogicalNot, ['x']);

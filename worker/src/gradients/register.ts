/**
 * THE list of gradient configs the worker registers on top of TF.js 4.22 so that every model and loss
 * the project offers is exactly twice differentiable (second-order MAML and friends). Each entry is
 * one file in this folder; the header of each file says which defect it fixes.
 *
 * Registration must happen after the upstream configs (the `@tensorflow/tfjs` bundle registers those
 * when it is first imported: imported here so that it can never run later and overwrite ours) and
 * before any forward pass that will be differentiated (saved tensors are chosen at forward time).
 */
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { addGradConfig, divGradConfig, meanGradConfig, multiplyGradConfig, subGradConfig, sumGradConfig } from './arithmetic.js';
import { avgPoolGradGradConfig } from './avg-pool-grad.js';
import { batchNormGradConfig } from './batch-norm.js';
import { batchNormGradGradConfig } from './batch-norm-grad.js';
import { avgPoolGradConfig } from './avg-pool.js';
import { conv2dBackpropFilterGradConfig } from './conv2d-backprop-filter.js';
import { depthwiseBackpropFilterGradConfig } from './depthwise-backprop-filter.js';
import { depthwiseBackpropInputGradConfig } from './depthwise-backprop-input.js';
import { eluGradGradConfig } from './elu-grad.js';
import { eluGradConfig } from './elu.js';
import { expGradConfig } from './exp.js';
import { maxPoolGradGradConfig } from './max-pool-grad.js';
import { maxPoolGatherMaskGradConfig, maxPoolGradConfig, maxPoolGradMaskGradConfig } from './max-pool.js';
import {
  equalGradConfig,
  greaterGradConfig,
  lessEqualGradConfig,
  lessGradConfig,
  logicalAndGradConfig,
  logicalNotGradConfig,
  logicalOrGradConfig,
  notEqualGradConfig,
} from './not-differentiable.js';
import { powGradConfig } from './pow.js';
import { leakyReluGradConfig, leakyReluGradGradConfig } from './leaky-relu.js';
import { reluGradConfig, reluGradGradConfig } from './relu.js';
import { sgdStepGradConfig, sgdStepGradGradConfig } from './sgd-step.js';
import { sigmoidGradConfig } from './sigmoid.js';
import { softmaxGradConfig } from './softmax.js';
import { tanhGradConfig } from './tanh.js';

/** Every config, in registration order. */
export const SECOND_ORDER_GRADIENTS: readonly tf.GradConfig[] = [
  // Gradients of gradient kernels (missing upstream).
  conv2dBackpropFilterGradConfig,
  maxPoolGradGradConfig,
  avgPoolGradGradConfig,
  eluGradGradConfig,
  depthwiseBackpropInputGradConfig,
  depthwiseBackpropFilterGradConfig,
  // Gradients that used a saved output, re-expressed through the saved input.
  expGradConfig,
  tanhGradConfig,
  sigmoidGradConfig,
  softmaxGradConfig,
  eluGradConfig,
  powGradConfig,
  // A first-order fix: AvgPool with 'same' padding.
  avgPoolGradConfig,
  // Fewer kernels on the tensorflow backend (its native kernels, ../kernels/tensorflow), upstream's
  // formula elsewhere: ReLU (ReluGrad), LeakyReLU (LeakyReluGrad), max pools that tile their input (first-maximum mask).
  reluGradConfig,
  leakyReluGradConfig,
  maxPoolGradConfig,
  // Upstream's arithmetic without its no-op Reshape and Cast kernels, Sum/Mean without ones().
  addGradConfig,
  subGradConfig,
  multiplyGradConfig,
  divGradConfig,
  sumGradConfig,
  meanGradConfig,
  // The worker's own fused kernels (tensorflow backend only) and their gradients.
  reluGradGradConfig,
  leakyReluGradGradConfig,
  maxPoolGradMaskGradConfig,
  maxPoolGatherMaskGradConfig,
  batchNormGradConfig,
  batchNormGradGradConfig,
  sgdStepGradConfig,
  sgdStepGradGradConfig,
  // Zero gradients of boolean-valued kernels used inside other gradients (max/min, masks).
  equalGradConfig,
  notEqualGradConfig,
  greaterGradConfig,
  lessGradConfig,
  lessEqualGradConfig,
  logicalAndGradConfig,
  logicalOrGradConfig,
  logicalNotGradConfig,
];

/** Kernel names of SECOND_ORDER_GRADIENTS. */
export const SECOND_ORDER_KERNELS: readonly string[] = SECOND_ORDER_GRADIENTS.map((c) => c.kernelName);

/** What was registered for each kernel before the first registerSecondOrderGradients(). */
const upstream = new Map<string, tf.GradConfig | undefined>();

/**
 * Register every config of SECOND_ORDER_GRADIENTS. Idempotent: a config already in place is left
 * alone; one that something else replaced is put back. Returns the kernel names (re)registered now.
 */
export function registerSecondOrderGradients(): string[] {
  const changed: string[] = [];
  for (const config of SECOND_ORDER_GRADIENTS) {
    const current = tf.getGradient(config.kernelName);
    if (current !== config) {
      if (!upstream.has(config.kernelName)) upstream.set(config.kernelName, current ?? undefined);
      tf.registerGradient(config);
      changed.push(config.kernelName);
    }
  }
  return changed;
}

/** True when every config of SECOND_ORDER_GRADIENTS is the one registered. */
export function secondOrderGradientsRegistered(): boolean {
  return SECOND_ORDER_GRADIENTS.every((c) => tf.getGradient(c.kernelName) === c);
}

/**
 * Put back what was registered before registerSecondOrderGradients() (TF.js's own, first-order-only
 * behaviour). For tests that demonstrate the defects; the worker never calls it.
 */
export function restoreUpstreamGradients(): void {
  for (const config of SECOND_ORDER_GRADIENTS) {
    if (tf.getGradient(config.kernelName) !== config) continue;
    const before = upstream.get(config.kernelName);
    if (before === undefined) tf.unregisterGradient(config.kernelName);
    else tf.registerGradient(before);
  }
}

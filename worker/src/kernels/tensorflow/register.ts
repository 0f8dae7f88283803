/**
 * THE list of kernels the worker registers for the `tensorflow` backend (tfjs-node), replacing
 * tfjs-node's own where one exists. Registered by backend.ts once tfjs-node has loaded (its import
 * registers its kernels, which would overwrite ours) and only when TensorFlow runs on a CPU, where
 * they were measured (docs/compute.md); a GPU build keeps tfjs-node's kernels and the composites.
 * One file per concept in this folder; the header of each says what it replaces and why.
 */
import * as tf from '@tensorflow/tfjs-core';
import { recordReplaced, replacedKernel } from '../replaced-kernels.js';
import { batchNormGradGradTensorflowConfig, batchNormGradTensorflowConfig, batchNormTensorflowConfig } from './batch-norm.js';
import { maxPoolGatherMaskTensorflowConfig, maxPoolGradMaskTensorflowConfig } from './max-pool-mask.js';
import { leakyReluGradTensorflowConfig } from './leaky-relu-grad.js';
import { isNativeCpuBackend } from './native.js';
import { broadcastToTensorflowConfig, castTensorflowConfig, maxTensorflowConfig, meanTensorflowConfig, reshapeTensorflowConfig, sumTensorflowConfig } from './plumbing.js';
import { reluGradTensorflowConfig } from './relu-grad.js';
import { sgdStepGradTensorflowConfig, sgdStepTensorflowConfig } from './sgd-step.js';

/** Every config, in registration order. */
export const TENSORFLOW_KERNELS: readonly tf.KernelConfig[] = [
  // Fused ops of the worker's own (no tfjs-node counterpart).
  batchNormTensorflowConfig,
  batchNormGradTensorflowConfig,
  batchNormGradGradTensorflowConfig,
  reluGradTensorflowConfig,
  leakyReluGradTensorflowConfig,
  maxPoolGradMaskTensorflowConfig,
  maxPoolGatherMaskTensorflowConfig,
  sgdStepTensorflowConfig,
  sgdStepGradTensorflowConfig,
  // tfjs-node's, without per-call operand tensors and same-dtype copies (bitwise the same results).
  reshapeTensorflowConfig,
  sumTensorflowConfig,
  meanTensorflowConfig,
  maxTensorflowConfig,
  castTensorflowConfig,
  // tfjs-node has none (tfjs' broadcastTo runs Tile).
  broadcastToTensorflowConfig,
];

/**
 * Register every config of TENSORFLOW_KERNELS (idempotent). Returns the kernel names (re)registered now.
 */
export function registerTensorflowKernels(): string[] {
  const changed: string[] = [];
  for (const config of TENSORFLOW_KERNELS) {
    const current = tf.getKernel(config.kernelName, 'tensorflow');
    if (current === config) continue;
    recordReplaced(config.kernelName, 'tensorflow', current);
    if (current !== undefined) tf.unregisterKernel(config.kernelName, 'tensorflow');
    tf.registerKernel(config);
    changed.push(config.kernelName);
  }
  return changed;
}

/**
 * registerTensorflowKernels() when the initialised `tensorflow` backend runs TensorFlow on a CPU;
 * returns whether it did. Call after tfjs-node is imported and its backend set up.
 */
export function registerTensorflowKernelsOnCpu(): boolean {
  if (!isNativeCpuBackend(tf.findBackend('tensorflow'))) return false;
  registerTensorflowKernels();
  return true;
}

/** True when every config of TENSORFLOW_KERNELS is the one registered. */
export function tensorflowKernelsRegistered(): boolean {
  return TENSORFLOW_KERNELS.every((c) => tf.getKernel(c.kernelName, 'tensorflow') === c);
}

/**
 * Put tfjs-node's own kernels back and remove the worker's fused ones (for tests and benchmarks
 * that compare against them; the worker never calls it). registerTensorflowKernels() undoes it.
 */
export function restoreTensorflowKernels(): void {
  for (const config of TENSORFLOW_KERNELS) {
    if (tf.getKernel(config.kernelName, 'tensorflow') !== config) continue;
    tf.unregisterKernel(config.kernelName, 'tensorflow');
    const before = replacedKernel(config.kernelName, 'tensorflow');
    if (before !== undefined) tf.registerKernel(before);
  }
}

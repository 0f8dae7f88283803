/**
 * THE list of training kernels the worker registers for the pure-JS `cpu` and the `wasm` backends,
 * replacing the backend's own kernel where one exists. One file per kernel in this folder; the
 * header of each says what it replaces and why. Kernel implementations are chosen per backend by
 * name at run time, so they can be registered at any time; the gradient configs of ../gradients
 * (registered by kernel name too) compose with them unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
// The backends register their own kernels when their modules are first evaluated: imported here so
// that this always happens before registerTrainingKernels() (a later import would overwrite ours).
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { avgPoolGradCpuConfig, avgPoolGradWasmConfig } from './avg-pool-grad.js';
import { conv2dCpuConfig } from './conv2d.js';
import { conv2dBackpropFilterCpuConfig, conv2dBackpropFilterWasmConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputCpuConfig, conv2dBackpropInputWasmConfig } from './conv2d-backprop-input.js';
import { batchMatMulCpuConfig, batchMatMulWasmConfig } from './batch-mat-mul.js';
import { padV2CpuConfig } from './pad.js';
import { sliceCpuConfig, sliceWasmConfig } from './slice.js';
import { addCpuConfig, multiplyCpuConfig, realDivCpuConfig, subCpuConfig } from './binary.js';
import { recordReplaced, replacedKernel, wasReplaced } from './replaced-kernels.js';
import { meanConfigs, sumConfigs } from './reduce.js';
import { maxPoolGradCpuConfig, maxPoolGradWasmConfig } from './max-pool-grad.js';
import { maxPoolCpuConfig } from './max-pool.js';
import { reluCpuConfig, squareCpuConfig, stepCpuConfig } from './unary.js';
import { stridedSliceCpuConfig } from './strided-slice.js';
import { unsortedSegmentSumWasmConfig } from './unsorted-segment-sum.js';

/** Every config, in registration order. */
export const TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2dBackpropFilterCpuConfig,
  conv2dBackpropFilterWasmConfig, // wasm has none upstream
  conv2dBackpropInputCpuConfig,
  conv2dBackpropInputWasmConfig,
  maxPoolGradCpuConfig,
  maxPoolGradWasmConfig,
  avgPoolGradCpuConfig,
  avgPoolGradWasmConfig,
  // The forward conv of the cpu backend, on the same GEMM (it dominates a Conv4 step on cpu).
  conv2dCpuConfig,
  // Broadcasting elementwise ops and reductions over leading axes (batch norm: per-channel
  // statistics and affine; these took ~80% of a Conv4 step on cpu).
  addCpuConfig,
  subCpuConfig,
  multiplyCpuConfig,
  realDivCpuConfig,
  ...sumConfigs,
  ...meanConfigs,
  // Unary ops and the forward max pool of a Conv4 block (upstream: a megamorphic per-element
  // closure call; a channel-outermost pool loop).
  reluCpuConfig,
  stepCpuConfig,
  squareCpuConfig,
  maxPoolCpuConfig,
  // The window taps of the second-order MaxPoolGrad gradient (upstream: TensorBuffer per element).
  stridedSliceCpuConfig,
  // What the vectorised Conv4 (im2col from slices + batched matMul) runs on.
  batchMatMulCpuConfig,
  batchMatMulWasmConfig,
  sliceCpuConfig,
  sliceWasmConfig,
  padV2CpuConfig,
  // Gather's gradient (an Embedding layer's backward pass): wasm has none upstream.
  unsortedSegmentSumWasmConfig,
];


/**
 * Register every config of TRAINING_KERNELS. Idempotent: a config already in place is left alone,
 * one that something else replaced is put back. Returns the `backend/kernel` keys (re)registered now.
 */
export function registerTrainingKernels(): string[] {
  const changed: string[] = [];
  for (const config of TRAINING_KERNELS) {
    const current = tf.getKernel(config.kernelName, config.backendName);
    if (current === config) continue;
    recordReplaced(config.kernelName, config.backendName, current);
    if (current !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
    changed.push(`${config.backendName}/${config.kernelName}`);
  }
  return changed;
}

/** True when every config of TRAINING_KERNELS is the one registered. */
export function trainingKernelsRegistered(): boolean {
  return TRAINING_KERNELS.every((c) => tf.getKernel(c.kernelName, c.backendName) === c);
}

/**
 * The backend's own kernel that registerTrainingKernels() replaced (undefined where there was
 * none, e.g. Conv2DBackpropFilter on wasm). For tests and benchmarks that compare against it.
 */
export function upstreamKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  if (wasReplaced(kernelName, backendName)) return replacedKernel(kernelName, backendName);
  const current = tf.getKernel(kernelName, backendName);
  return TRAINING_KERNELS.includes(current) ? undefined : current;
}

/**
 * Put the backends' own kernels back (for tests and benchmarks only; the worker never calls it).
 * A replaced kernel whose setup never ran (its backend was initialised after the replacement) is
 * set up on the live backend first.
 */
export function restoreUpstreamKernels(): void {
  for (const config of TRAINING_KERNELS) {
    if (tf.getKernel(config.kernelName, config.backendName) !== config) continue;
    tf.unregisterKernel(config.kernelName, config.backendName);
    const before = replacedKernel(config.kernelName, config.backendName);
    if (before === undefined) continue;
    tf.registerKernel(before);
    const backend = tf.engine().registry[config.backendName];
    if (backend !== undefined) before.setupFunc?.(backend);
  }
}

/**
 * The backends' own kernel configs that registerTrainingKernels() replaced, by backend and kernel
 * name: replacement kernels fall back to them for inputs they do not handle (other dtypes), tests
 * and benchmarks compare against them.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';

const replaced = new Map<string, tf.KernelConfig | undefined>();

const key = (kernelName: string, backendName: string) => `${backendName}/${kernelName}`;

export function recordReplaced(kernelName: string, backendName: string, config: tf.KernelConfig | undefined): void {
  if (!replaced.has(key(kernelName, backendName))) replaced.set(key(kernelName, backendName), config);
}

export function wasReplaced(kernelName: string, backendName: string): boolean {
  return replaced.has(key(kernelName, backendName));
}

export function replacedKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  return replaced.get(key(kernelName, backendName));
}

/** Backends each replaced kernel has been set up on (the engine sets up only registered kernels). */
const setUp = new WeakMap<tf.KernelConfig, WeakSet<object>>();

/**
 * Run the replaced kernel (for inputs a replacement does not handle). A kernel replaced before its
 * backend was initialised never had its setupFunc run by the engine (wasm binds its C functions
 * there): it is run here, once per backend instance.
 */
export function runReplaced(kernelName: string, backendName: string, args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const k = replaced.get(key(kernelName, backendName));
  if (!k) throw new KernelSetupError(`training kernels: ${backendName} has no kernel ${kernelName} of its own to fall back to`);
  if (k.setupFunc) {
    let done = setUp.get(k);
    if (!done) setUp.set(k, (done = new WeakSet()));
    const backend = args.backend;
    if (!done.has(backend)) {
      k.setupFunc(args.backend);
      done.add(backend);
    }
  }
  return k.kernelFunc(args);
}

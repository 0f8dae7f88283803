/**
 * One tfjs-core instance for the whole worker.
 *
 * `@tensorflow/tfjs-core`'s own Node bundle registers no gradient configs: upstream ships them only
 * inside the `@tensorflow/tfjs` bundle (`dist/tf.node.js` requires `@tensorflow/tfjs-core` and
 * registers ~125 gradients on it). Importing it here makes `tf.grads` work for every op the models
 * use. Dedupe path: worker → @tensorflow/tfjs 4.22.0 → @tensorflow/tfjs-core 4.22.0 (exact pins),
 * tfjs-backend-cpu/-wasm peer-depend on the same core, and tfjs-node(-gpu) require
 * `@tensorflow/tfjs`; npm hoists one copy to node_modules/@tensorflow/tfjs-core. Even a duplicated
 * copy would share state: the engine, kernel and gradient registries live on globalThis
 * (`_tfengine`, `kernelRegistry`, `gradRegistry`); `checkSingleCore()` verifies the hoisting.
 *
 * Upstream gradients that use a saved OUTPUT (Tanh, Exp, Sigmoid, Softmax, Max, …) lose their
 * second-order term inside nested `tf.grads` (the saved copy is taped before its producer), and
 * some gradient kernels have no gradient at all: `./gradients/register.js` replaces those. It is
 * registered here, at import time, before any forward pass that will be differentiated.
 */
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { registerSecondOrderGradients } from './gradients/register.js';
import { registerTrainingKernels } from './kernels/register.js';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { InstallError } from './errors.js';

registerSecondOrderGradients();
// Fast training kernels for the cpu and wasm backends (wasm has no Conv2DBackpropFilter at all).
registerTrainingKernels();

const require = createRequire(import.meta.url);

/** Kernels whose gradients the worker's MLP/MAML path needs; a missing one means a broken install. */
const NEEDED = ['BatchMatMul', 'Add', 'Sub', 'Mul', 'Relu', 'Tanh', 'Mean', 'Sum', 'SquaredDifference', 'Slice'];

export function assertUpstreamGradients(): void {
  const missing = NEEDED.filter((k) => tf.getGradient(k) === undefined);
  if (missing.length > 0) {
    throw new InstallError(`tfjs gradient configs missing for ${missing.join(', ')}: @tensorflow/tfjs did not register them`);
  }
}

/** Directory of the tfjs-core copy a package resolves (to check that there is one copy). */
export function coreLocation(fromPackage?: string): string {
  const req = fromPackage ? createRequire(require.resolve(`${fromPackage}/package.json`)) : require;
  return dirname(req.resolve('@tensorflow/tfjs-core/package.json'));
}

/** Throws when @tensorflow/tfjs or a backend would load a second copy of tfjs-core. */
export function checkSingleCore(
  packages: readonly string[] = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm'],
  optional: readonly string[] = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
): string {
  const mine = coreLocation();
  const present = optional.filter((p) => {
    try {
      require.resolve(`${p}/package.json`);
      return true;
    } catch {
      return false;
    }
  });
  for (const p of [...packages, ...present]) {
    const theirs = coreLocation(p);
    if (theirs !== mine) throw new InstallError(`${p} resolves tfjs-core at ${theirs}, the worker at ${mine}: run npm dedupe`);
  }
  return mine;
}


/**
 * The backend numerical tests run on: `METALOOP_TEST_BACKEND` (cpu by default; `tensorflow` loads
 * @tensorflow/tfjs-node, `wasm` the wasm backend). Fails loudly when the backend cannot start.
 * Stays in the worker (built only into dist-test/): initialising wasm loads this package's own
 * kernel and gradient registrations, which must be the copy under test.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerTensorflowKernelsOnCpu } from '../kernels/tensorflow/register.js';
import { defaultTfThreads } from '../tf-threads.js';

export type TestBackend = 'cpu' | 'wasm' | 'tensorflow';

/** METALOOP_TEST_BACKEND, checked (cpu when unset or empty). */
export function testBackendName(): TestBackend {
  const name = process.env.METALOOP_TEST_BACKEND || 'cpu';
  if (name !== 'cpu' && name !== 'wasm' && name !== 'tensorflow') throw new Error(`METALOOP_TEST_BACKEND=${name}: expected cpu, wasm or tensorflow`);
  return name;
}

/**
 * Backends of the files that test cpu and wasm side by side (the project's own kernels exist for
 * those two): both when METALOOP_TEST_BACKEND is unset (the main run), else only that one
 * (tensorflow: the same checks on tfjs-node's kernels; scripts/test-backends.mjs).
 */
export function sideBySideBackends(): TestBackend[] {
  return process.env.METALOOP_TEST_BACKEND ? [testBackendName()] : ['cpu', 'wasm'];
}

/** Load (if needed) and initialise a backend for a test; fails loudly when it cannot start. */
export async function initTestBackend(name: TestBackend): Promise<void> {
  if (name === 'tensorflow') {
    defaultTfThreads(); // the worker's thread pools (../tf-threads.ts), before the binding loads
    // Not a literal specifier: tfjs-node is optional, so the build must not need its types.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    await import('@tensorflow/tfjs-node' as string);
  }
  if (name === 'wasm' && tf.findBackend('wasm') === null) {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // Loads the worker's own registrations too (tfjs-setup.js): its wasm training kernels, second-order gradients.
    const { wasmDirectory } = await import('../backend.js');
    wasm.setWasmPaths(wasmDirectory());
  }
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`);
  // As the worker's selectBackend does: its own tensorflow kernels, once tfjs-node's are in place.
  if (name === 'tensorflow') registerTensorflowKernelsOnCpu();
}

export async function useTestBackend(): Promise<string> {
  const name = testBackendName();
  await initTestBackend(name).catch((err: unknown) => {
    throw new Error(`METALOOP_TEST_BACKEND=${name}: ${err instanceof Error ? err.message : String(err)}`);
  });
  return name;
}

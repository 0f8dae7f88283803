/**
 * The backend numerical tests run on: `METALOOP_TEST_BACKEND` (cpu by default; `tensorflow` loads
 * @tensorflow/tfjs-node, `wasm` the wasm backend). Fails loudly when the backend cannot start.
 */
import * as tf from '@tensorflow/tfjs-core';

export async function useTestBackend(): Promise<string> {
  const name = process.env.METALOOP_TEST_BACKEND ?? 'cpu';
  if (name === 'tensorflow') await import('@tensorflow/tfjs-node' as string);
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const { wasmDirectory } = await import('../backend.js');
    wasm.setWasmPaths(wasmDirectory());
  }
  if (!(await tf.setBackend(name))) throw new Error(`METALOOP_TEST_BACKEND=${name}: backend failed to initialise`);
  return name;
}

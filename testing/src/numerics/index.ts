/**
 * Numerical test helpers of the worker's tests: finite differences and random tensors, and the
 * float64 reference MLP / MAML objective. Loads @tensorflow/tfjs-core (the instance the worker
 * uses), never a copy of the worker. (The test backend, METALOOP_TEST_BACKEND, is
 * worker/src/testing/backend.ts: initialising wasm must load the worker's own registrations.)
 */
export * from './finite-diff.js';
export * from './mlp64.js';
export * from './fd64.js';

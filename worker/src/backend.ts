/**
 * Backend selection: `@tensorflow/tfjs-node-gpu` → `@tensorflow/tfjs-node` → wasm → cpu.
 * The native packages are optional dependencies (they download libtensorflow at install, which
 * fails offline) and are loaded with a dynamic import; each failure is logged with its reason.
 */
import './tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { silentLogger, type Logger } from '@metaloop/shared';
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { BackendError, type BackendName } from './errors.js';
import { registerTensorflowKernelsOnCpu } from './kernels/tensorflow/register.js';
import { defaultTfThreads } from './tf-threads.js';

export type BackendPreference = 'any' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['any', 'tensorflow', 'wasm', 'cpu'];

export interface BackendAttempt {
  readonly name: string;
  readonly error: string;
}

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' (native, either package), 'wasm' or 'cpu'. */
  readonly name: BackendName;
  /** What runs the kernels, e.g. 'gpu (libtensorflow, tfjs-node-gpu)', 'wasm simd, 1 thread(s)', 'cpu (js)'. */
  readonly device: string;
  /** Candidates tried before the one selected, with the reason each failed. */
  readonly tried: readonly BackendAttempt[];
  /** True when the kernels run on a GPU (libtensorflow found a CUDA device); see gpu.ts for which. */
  readonly gpu?: boolean;
}

export interface SelectBackendOptions {
  /** Which backend is acceptable; default `METALOOP_BACKEND` or 'any'. */
  readonly require?: BackendPreference;
  readonly logger?: Logger;
}

interface Candidate {
  readonly label: string;
  readonly backend: BackendName;
  init(): Promise<{ device: string; gpu?: boolean }>;
}

const require = createRequire(import.meta.url);

function message(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0]!.slice(0, 300);
}

async function activate(name: BackendName): Promise<void> {
  if (tf.findBackendFactory(name) === null && tf.findBackend(name) === null) {
    throw new BackendError(`backend '${name}' is not registered on this tfjs-core (a second tfjs-core copy?)`, name, []);
  }
  // setBackend resolves false (and warns) instead of throwing when initialisation fails.
  const warn = console.warn;
  let warned = '';
  console.warn = (...args: unknown[]) => {
    warned += args.map(String).join(' ');
  };
  try {
    const ok = await tf.setBackend(name);
    if (!ok) throw new BackendError(`initialisation of backend '${name}' failed${warned ? `: ${warned.slice(0, 200)}` : ''}`, name, []);
    await tf.ready();
  } finally {
    console.warn = warn;
  }
}

function native(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Candidate {
  return {
    label: pkg,
    backend: 'tensorflow',
    async init() {
      const threads = defaultTfThreads(); // read by libtensorflow when the binding loads
      await import(pkg); // registers 'tensorflow' on the tfjs-core of @tensorflow/tfjs (the same copy)
      await activate('tensorflow');
      // tfjs-node's backend says whether libtensorflow found a GPU (a GPU build on a box without CUDA runs on CPU).
      const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
      // The worker's native kernels (fused batch norm, ReluGrad, mask max-pool gradient, ...), measured on CPUs only.
      registerTensorflowKernelsOnCpu();
      const pools = `${threads.intraOp} intra-op, ${threads.interOp} inter-op thread(s)`;
      return { device: `${gpu ? 'gpu' : 'cpu'} (libtensorflow, ${pkg.slice('@tensorflow/'.length)}, ${pools})`, gpu };
    },
  };
}

/** Directory holding tfjs-backend-wasm's .wasm binaries (its dist folder), with a trailing separator. */
export function wasmDirectory(): string {
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + sep;
}

const wasmCandidate: Candidate = {
  label: '@tensorflow/tfjs-backend-wasm',
  backend: 'wasm',
  async init() {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (tf.findBackend('wasm') === null) wasm.setWasmPaths(wasmDirectory());
    await activate('wasm');
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return { device: `wasm${simd ? ' simd' : ''}, ${wasm.getThreadsCount()} thread(s)` };
  },
};

const cpuCandidate: Candidate = {
  label: '@tensorflow/tfjs-backend-cpu',
  backend: 'cpu',
  async init() {
    await import('@tensorflow/tfjs-backend-cpu');
    await activate('cpu');
    return { device: 'cpu (js)' };
  },
};

function candidates(pref: BackendPreference): Candidate[] {
  const natives = [native('@tensorflow/tfjs-node-gpu'), native('@tensorflow/tfjs-node')];
  switch (pref) {
    case 'tensorflow':
      return natives;
    case 'wasm':
      return [wasmCandidate];
    case 'cpu':
      return [cpuCandidate];
    case 'any':
      return [...natives, wasmCandidate, cpuCandidate];
  }
}

export function resolveBackendPreference(value: string | undefined): BackendPreference {
  const v = (value ?? 'any').trim().toLowerCase();
  if ((BACKEND_PREFERENCES as readonly string[]).includes(v)) return v as BackendPreference;
  throw new BackendError(`unknown backend ${JSON.stringify(value)}: use one of ${BACKEND_PREFERENCES.join(', ')}`, v, []);
}

/**
 * Initialise the first backend of the chain allowed by `require` and make it tfjs' active one.
 * Silences the cpu backend's "install tfjs-node" banner (prod mode) since the choice is logged here.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendInfo> {
  const logger = options.logger ?? silentLogger;
  const pref = resolveBackendPreference(options.require ?? (process.env.METALOOP_BACKEND || undefined));
  tf.env().set('PROD', true);
  const tried: BackendAttempt[] = [];
  for (const c of candidates(pref)) {
    try {
      const { device, gpu } = await c.init();
      const info: BackendInfo = { name: c.backend, device, tried, ...(gpu ? { gpu } : {}) };
      for (const t of tried) logger.info('backend unavailable', { backend: t.name, reason: t.error });
      logger.info('backend selected', { backend: c.backend, package: c.label, device, required: pref });
      return info;
    } catch (err) {
      tried.push({ name: c.label, error: message(err) });
    }
  }
  for (const t of tried) logger.warn('backend unavailable', { backend: t.name, reason: t.error });
  throw new BackendError(
    `no usable tfjs backend for --backend ${pref}: ` + tried.map((t) => `${t.name}: ${t.error}`).join('; '),
    pref,
    tried,
  );
}

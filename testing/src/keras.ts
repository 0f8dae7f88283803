/**
 * Keras 3 (Python, JAX CPU backend) for the Keras round-trip tests: the interpreter of the virtual
 * environment .ci/before-test.d/40-keras.sh installs, examples/keras/make_model.py to build a model
 * and test/python/keras_predict.py to load one and predict. A missing Keras fails loudly, naming
 * the install command.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';
import { requireExecutable } from './proc.js';
import { runCommand } from './run-cli.js';

export const KERAS_INSTALL =
  'install Keras 3 for the tests with `bash .ci/before-test.d/40-keras.sh` (a virtual environment at ~/.cache/metaloop/keras-venv with test/python/requirements.txt: ' +
  'pip install keras h5py jax scipy), or set METALOOP_KERAS_PYTHON to a python that has them';

/** The python with Keras 3 (METALOOP_KERAS_PYTHON, else the CI hook's virtual environment); throws naming the install command. */
export function kerasPython(): string {
  const explicit = process.env.METALOOP_KERAS_PYTHON;
  const venv = process.env.METALOOP_KERAS_VENV ?? join(homedir(), '.cache/metaloop/keras-venv');
  return requireExecutable(explicit || join(venv, 'bin/python'), 'Keras 3 (python with keras, h5py, jax)', KERAS_INSTALL);
}

export const MAKE_MODEL = join(ROOT, 'examples/keras/make_model.py');
export const KERAS_PREDICT = join(ROOT, 'test/python/keras_predict.py');

/** Run a Python script of the repository with Keras on the JAX CPU backend; throws with its output on failure. */
export async function runKerasScript(children: Set<number>, script: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const python = kerasPython();
  const env = { ...process.env, KERAS_BACKEND: 'jax', JAX_PLATFORMS: 'cpu', TF_CPP_MIN_LOG_LEVEL: '2', PYTHONHASHSEED: '0' };
  const r = await runCommand(children, python, [script, ...args], { env, timeoutMs });
  if (r.code !== 0) {
    const missing = /No module named '(keras|jax|h5py)'/.exec(r.stderr);
    throw new Error(`${script} ${args.join(' ')} exited ${r.code}${missing ? ` (${missing[1]} is missing: ${KERAS_INSTALL})` : ''}:\n${r.stderr.slice(-3000)}`);
  }
  return r.stdout;
}

export interface F32Array {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface KerasAnswer {
  readonly keras: string;
  readonly backend: string;
  /** model.predict(x): batch norm with its moving statistics. */
  readonly predict?: F32Array;
  /** model(x, training=True): batch norm with the batch's statistics. */
  readonly training?: F32Array;
  /** Every layer's variables in Keras' order. */
  readonly weights?: Record<string, F32Array[]>;
}

const enc = (a: F32Array) => ({ shape: [...a.shape], data: Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).toString('base64') });
const dec = (d: { shape: number[]; data: string }): F32Array => {
  const b = Buffer.from(d.data, 'base64');
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return { shape: d.shape, data: new Float32Array(copy.buffer) };
};

/** Load `model` (a .keras file) in Keras and answer what `want` asks for on inputs `x`. */
export async function kerasPredict(children: Set<number>, model: string, x: F32Array | null, want: readonly ('predict' | 'training' | 'weights')[]): Promise<KerasAnswer> {
  const dir = await mkdtemp(join(tmpdir(), 'metaloop-keras-'));
  try {
    const req = join(dir, 'request.json');
    await writeFile(req, JSON.stringify({ model, want, ...(x ? { x: enc(x) } : {}) }));
    const raw = JSON.parse(await runKerasScript(children, KERAS_PREDICT, [req])) as {
      keras: string;
      backend: string;
      predict?: { shape: number[]; data: string };
      training?: { shape: number[]; data: string };
      weights?: Record<string, { shape: number[]; data: string }[]>;
    };
    return {
      keras: raw.keras,
      backend: raw.backend,
      ...(raw.predict ? { predict: dec(raw.predict) } : {}),
      ...(raw.training ? { training: dec(raw.training) } : {}),
      ...(raw.weights ? { weights: Object.fromEntries(Object.entries(raw.weights).map(([k, v]) => [k, v.map(dec)])) } : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** examples/keras/make_model.py: the residual conv net saved to `out`. */
export async function makeKerasModel(children: Set<number>, out: string, o: { imageSize: number; channels: number; classes: number; filters: number; seed?: number }): Promise<string> {
  return runKerasScript(children, MAKE_MODEL, ['--out', out, '--image-size', String(o.imageSize), '--channels', String(o.channels), '--classes', String(o.classes), '--filters', String(o.filters), '--seed', String(o.seed ?? 0)]);
}

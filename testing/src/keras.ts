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

/** max |a − b| / max |b|: how far a prediction is from a reference, relative to the reference's scale. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`relDiff: ${a.length} values against ${b.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

/**
 * A layer graph (for 12×12×1 images) of every layer type the Keras and TF.js export writes: joins,
 * two convolutions at one depth, activations TF.js spells otherwise (silu, gelu, leaky_relu), batch
 * norm without β, layer norm, padding and pools; Dropout at rate 0 (Keras and TF.js drop in a
 * training call, Metaloop never does).
 */
export const EXPORT_ZOO_LAYERS: readonly Record<string, unknown>[] = [
  { type: 'Conv2D', name: 'c1', filters: 4, kernel_size: 3, padding: 'same', activation: 'silu' },
  { type: 'BatchNormalization', name: 'bn1', center: false },
  { type: 'LeakyReLU', name: 'a1', negative_slope: 0.1 },
  { type: 'Conv2D', name: 'skip', inputs: ['input'], filters: 4, kernel_size: 1, use_bias: false },
  { type: 'Add', name: 'add', inputs: ['a1', 'skip'] },
  { type: 'Concatenate', name: 'cat', inputs: ['add', 'c1'] },
  { type: 'ZeroPadding2D', name: 'zp', padding: 1 },
  { type: 'Conv2D', name: 'c2', filters: 3, kernel_size: 3, strides: 2, activation: 'tanh' },
  { type: 'BatchNormalization', name: 'bn2', epsilon: 0.01 },
  { type: 'AveragePooling2D', name: 'ap', pool_size: 2, padding: 'same' },
  { type: 'ELU', name: 'elu' },
  { type: 'MaxPooling2D', name: 'mp', pool_size: 2, strides: 1 },
  { type: 'Activation', name: 'act', activation: 'gelu' },
  { type: 'Flatten', name: 'flat' },
  { type: 'Dense', name: 'fc', units: 6, activation: 'leaky_relu' },
  { type: 'Dropout', name: 'drop', rate: 0 },
  { type: 'LayerNormalization', name: 'ln' },
  { type: 'ReLU', name: 'relu', negative_slope: 0.05 },
  { type: 'Dense', name: 'head' },
];

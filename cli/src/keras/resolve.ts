/**
 * `model: { kind: keras, path, init }` in a run spec, resolved by the CLI before anything is sent:
 * the file (a path relative to the spec file) becomes the `kind: layers` graph, and with
 * `init: weights` its weights become θ₀, carried to the coordinator by the `upload` verb and named
 * in the spec by their sha256 (`model.weights`). Coordinator and workers only ever see `kind: layers`.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { LAYER_TYPES, layoutSize, metaloop, modelGraph, SpecError, toBundle, type RunSpec } from '@metaloop/shared';
import { fromKeras, kerasWeights, type LayersModelDoc, type NamedTensor } from './from-keras.js';
import { readModelFile, type ModelFile } from './read.js';

const KERAS_KEYS = ['kind', 'path', 'init'];

/** A `kind: keras` model read: the file, what it became, and how θ₀ is to be made. */
export interface KerasSource {
  /** The model file (absolute path). */
  readonly file: string;
  readonly init: 'weights' | 'random';
  readonly read: ModelFile;
  /** The `kind: layers` model (no weights yet). */
  readonly model: LayersModelDoc;
}

/** θ₀ read from the file, as the TensorBundle the coordinator takes, named by its sha256. */
export interface InitWeights {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly tensors: readonly NamedTensor[];
  /** What the file held that Metaloop does not use. */
  readonly notes: readonly string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** θ₀ tensors as the TensorBundle the coordinator takes (the model's layout, float32). */
export function weightsBundle(tensors: readonly NamedTensor[]): Uint8Array {
  const layout = tensors.map((t) => ({ name: t.name, shape: [...t.shape] }));
  const data = new Float32Array(layoutSize(layout));
  let off = 0;
  for (const t of tensors) {
    data.set(t.data, off);
    off += t.data.length;
  }
  return metaloop.TensorBundle.encode(toBundle({ layout, data })).finish();
}

/** Read the model file `model.kind: keras` names in a parsed spec document; null for other models. */
export async function readKerasModel(doc: Record<string, unknown>, specFile: string): Promise<KerasSource | null> {
  const model = doc['model'];
  if (!isObject(model) || model['kind'] !== 'keras') return null;
  const issues = [];
  for (const key of Object.keys(model)) {
    if (!KERAS_KEYS.includes(key)) issues.push({ path: `model.${key}`, message: `unknown field for kind: keras (it takes ${KERAS_KEYS.join(', ')}); the model's options come from the file` });
  }
  const path = model['path'];
  if (typeof path !== 'string' || path === '') issues.push({ path: 'model.path', message: 'required: the .keras file or TF.js model.json, relative to the spec file' });
  const init = model['init'];
  if (init !== 'weights' && init !== 'random') {
    issues.push({
      path: 'model.init',
      message: `${init === undefined ? 'required' : `got ${JSON.stringify(init)}`}: weights (θ₀ = the file's weights, e.g. a pretrained backbone) or random (θ₀ drawn by the layers' initialisers from the run seed)`,
    });
  }
  if (issues.length > 0) throw new SpecError(issues, specFile);
  const file = resolve(dirname(specFile), path as string);
  const read = await readModelFile(file);
  return { file, init: init as 'weights' | 'random', read, model: fromKeras(file, read.topology, LAYER_TYPES) };
}

/** θ₀ from the file for the validated spec of `source` (its graph fixes every parameter's shape). */
export function initWeights(source: KerasSource, spec: RunSpec): InitWeights {
  const { tensors, notes } = kerasWeights(source.file, source.read.topology, modelGraph(spec).nodes, source.read.variables);
  const bytes = weightsBundle(tensors);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), tensors, notes };
}

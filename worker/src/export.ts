/**
 * Exported models: the directory `metaloop export` writes and `loadExportedModel(dir)` reads.
 *
 *   model.json              TensorFlow.js model JSON: `weightsManifest` in the standard tfjs format
 *                           (so `tf.io.decodeWeights`/`tf.io.loadWeights` read the weights too),
 *                           `format: "metaloop-functional"`, the model's kind and sizes in
 *                           `modelTopology`, run id, step and sha256 in `userDefinedMetadata`
 *   group1-shard1of1.bin    every tensor of θ as little-endian float32, in layout order
 *   spec.json               the run spec (YAML is a superset of JSON: `metaloop submit` reads it)
 *
 * Models are functional, so the loader returns the parameters and a `forward(x)` bound to them:
 *
 *   const m = await loadExportedModel('out/sinusoid');
 *   const y = m.forward(tf.tensor2d([[0.5]]));   // [N, inputs] -> [N, outputs]
 *   const ys = m.predict([0.5, 1.5], 2);         // the same without tfjs: Float32Array
 *   m.dispose();
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { layoutSize, paramLayout, sizeOf, taskDims, specFromJson, type RunSpec, type TensorSpec } from '@metaloop/shared';
import { createModel, type NamedTensors } from './model/model.js';
import { ExportError } from './errors.js';
import { WORKER_VERSION } from './options.js';

export const EXPORT_FORMAT = 'metaloop-functional';
export const EXPORT_WEIGHTS_FILE = 'group1-shard1of1.bin';

export interface ExportMetadata {
  readonly runId?: string;
  readonly step?: number;
  /** `checkpoint` or `params`. */
  readonly source?: string;
}

/** The tfjs model.json this module writes. */
export interface ExportedModelJson {
  format: string;
  generatedBy: string;
  convertedBy: null;
  modelTopology: { kind: string; model: RunSpec['model']; taskFamily: string; inputShape: number[]; outputs: number };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: 'float32' }[] }[];
  userDefinedMetadata: { runId: string; step: number; source: string; sha256: string; parameters: number };
}

export interface ExportedModel {
  readonly spec: RunSpec;
  readonly layout: readonly TensorSpec[];
  /** θ in layout order (model tensors, then algorithm extras such as Meta-SGD's inner rates). */
  readonly params: Float32Array;
  readonly metadata: ExportedModelJson['userDefinedMetadata'];
  /** θ as named tensors (owned by this object until `dispose()`). */
  readonly weights: NamedTensors;
  /** The model's output for inputs x [N, ...inputShape] -> [N, outputs]. */
  forward(x: tf.Tensor): tf.Tensor;
  /** The same on plain numbers: `count` inputs flattened row-major -> count × outputs values. */
  predict(inputs: ArrayLike<number>, count: number): Float32Array;
  dispose(): void;
}

function inputShape(spec: RunSpec): number[] {
  return taskDims(spec).inputShape;
}

/** Write an exported model directory (created when missing); returns the paths written. */
export async function saveExportedModel(dir: string, spec: RunSpec, params: Float32Array, meta: ExportMetadata = {}): Promise<string[]> {
  const layout = paramLayout(spec);
  const n = layoutSize(layout);
  if (params.length !== n) throw new RangeError(`θ has ${params.length} values, the layout of this spec needs ${n}`);
  const bytes = new Uint8Array(n * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) view.setFloat32(i * 4, params[i]!, true);
  const modelJson: ExportedModelJson = {
    format: EXPORT_FORMAT,
    generatedBy: `@metaloop/worker ${WORKER_VERSION}`,
    convertedBy: null,
    modelTopology: {
      kind: spec.model.kind,
      model: spec.model,
      taskFamily: spec.task.family,
      inputShape: inputShape(spec),
      outputs: taskDims(spec).outputs,
    },
    weightsManifest: [{ paths: [EXPORT_WEIGHTS_FILE], weights: layout.map((t) => ({ name: t.name, shape: [...t.shape], dtype: 'float32' as const })) }],
    userDefinedMetadata: {
      runId: meta.runId ?? '',
      step: meta.step ?? 0,
      source: meta.source ?? '',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      parameters: n,
    },
  };
  await mkdir(dir, { recursive: true });
  const paths = [join(dir, 'model.json'), join(dir, EXPORT_WEIGHTS_FILE), join(dir, 'spec.json')];
  await writeFile(paths[0]!, JSON.stringify(modelJson, null, 2) + '\n');
  await writeFile(paths[1]!, bytes);
  await writeFile(paths[2]!, JSON.stringify(spec, null, 2) + '\n');
  return paths;
}

/** Read an exported model directory; throws with the file and the problem when it is not one. */
export async function loadExportedModel(dir: string): Promise<ExportedModel> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch (err) {
      throw new ExportError(`${join(dir, name)}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (not an exported Metaloop model directory?)`, join(dir, name), { cause: err });
    }
  };
  const modelJson = JSON.parse((await read('model.json')).toString('utf8')) as ExportedModelJson;
  if (modelJson.format !== EXPORT_FORMAT) throw new ExportError(`${join(dir, 'model.json')}: format ${JSON.stringify(modelJson.format)}, expected ${EXPORT_FORMAT}`, join(dir, 'model.json'));
  const spec = specFromJson((await read('spec.json')).toString('utf8'), join(dir, 'spec.json'));
  const layout = paramLayout(spec);
  const specs = modelJson.weightsManifest.flatMap((g) => g.weights);
  const chunks: Buffer[] = [];
  for (const g of modelJson.weightsManifest) for (const p of g.paths) chunks.push(await read(p));
  const bytes = Buffer.concat(chunks);
  const same = specs.length === layout.length && specs.every((w, i) => w.name === layout[i]!.name && w.shape.join(',') === layout[i]!.shape.join(','));
  if (!same) throw new ExportError(`${join(dir, 'model.json')}: the weights manifest does not match the layout of the spec's model`, join(dir, 'model.json'));
  const n = layoutSize(layout);
  if (bytes.byteLength !== n * 4) throw new ExportError(`${dir}: weights hold ${bytes.byteLength} bytes, the manifest needs ${n * 4}`, dir);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (modelJson.userDefinedMetadata?.sha256 && sha !== modelJson.userDefinedMetadata.sha256) throw new ExportError(`${dir}: weights sha256 differs from model.json`, dir);
  const params = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) params[i] = view.getFloat32(i * 4, true);
  await tf.ready(); // a backend must be initialised before tensors exist
  const weights: NamedTensors = {};
  let off = 0;
  for (const t of layout) {
    const size = sizeOf(t.shape);
    weights[t.name] = tf.tensor(params.slice(off, off + size), [...t.shape]);
    off += size;
  }
  const model = createModel(spec);
  const shape = inputShape(spec);
  let disposed = false;
  return {
    spec,
    layout,
    params,
    metadata: modelJson.userDefinedMetadata,
    weights,
    forward: (x) => {
      if (disposed) throw new ExportError('this exported model was disposed', dir);
      return tf.tidy(() => model.forward(weights, x));
    },
    predict(inputs, count) {
      if (disposed) throw new ExportError('this exported model was disposed', dir);
      const y = tf.tidy(() => model.forward(weights, tf.tensor(Float32Array.from(inputs), [count, ...shape])));
      try {
        return y.dataSync() as Float32Array;
      } finally {
        y.dispose();
      }
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      tf.dispose(Object.values(weights));
    },
  };
}

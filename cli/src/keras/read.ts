/**
 * Read a model file into its topology and variables: a Keras 3 `.keras` archive (config.json and
 * model.weights.h5) or a TF.js Layers `model.json` with its binary weight shards beside it
 * (`format: layers-model`; the weights named `<layer>/<variable>` in `weightsManifest`).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KerasModelError } from '../errors.js';
import { readKerasArchive } from './archive.js';
import type { FileVariable, VariablesOf } from './from-keras.js';
import { readWeightsH5, type H5Layer } from './h5.js';
import { parseTopology, type KerasTopology } from './topology.js';

export interface ModelFile {
  readonly format: 'keras' | 'tfjs-layers';
  readonly topology: KerasTopology;
  /** The variables of a layer (Keras names, in Keras' order); undefined when the file has none for it. */
  readonly variables: VariablesOf;
  /** Keras version or generator named by the file. */
  readonly producer: string;
}

async function bytesOf(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KerasModelError(file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, not a model file' : `cannot read it (${code ?? String(err)})`);
  }
}

/** Read `.keras` or `model.json` (by content: a zip starts with PK). */
export async function readModelFile(file: string): Promise<ModelFile> {
  const bytes = await bytesOf(file);
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return readKeras(file, bytes);
  if (file.endsWith('.h5') || (bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46)) {
    throw new KerasModelError(file, 'a legacy Keras HDF5 model (.h5): save it in the Keras 3 format, model.save("model.keras")');
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new KerasModelError(file, 'neither a .keras archive nor a TF.js model.json');
  }
  return readTfjs(file, json);
}

async function readKeras(file: string, bytes: Uint8Array): Promise<ModelFile> {
  const archive = readKerasArchive(file, bytes);
  const topology = parseTopology(file, archive.config);
  const h5 = archive.weights ? await readWeightsH5(file, archive.weights) : new Map<string, H5Layer>();
  const byName = new Map([...h5.values()].filter((g) => g.name !== undefined).map((g) => [g.name!, g]));
  return {
    format: 'keras',
    topology,
    producer: `Keras ${typeof archive.metadata['keras_version'] === 'string' ? archive.metadata['keras_version'] : '?'}`,
    // Keras loads by group path and position; the `name` attribute (written since Keras 3.0) settles a disagreement.
    variables: (layer) => {
      const at = h5.get(layer.h5Path);
      const named = byName.get(layer.name);
      const g = at && (at.name === undefined || at.name === layer.name) ? at : named;
      return g?.vars;
    },
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

interface ManifestEntry {
  readonly name: string;
  readonly shape: number[];
  readonly dtype: string;
  readonly quantization?: unknown;
}

async function readTfjs(file: string, json: unknown): Promise<ModelFile> {
  if (!isObject(json) || !('modelTopology' in json)) throw new KerasModelError(file, 'not a TF.js model.json (no modelTopology)');
  if (json['format'] === 'graph-model') {
    throw new KerasModelError(file, 'a TF.js graph model has no layers to read: convert the Keras model with tensorflowjs_converter --output_format tfjs_layers_model');
  }
  let topo = json['modelTopology'];
  // tensorflowjs_converter from a Keras .h5 wraps the model: { model_config, training_config, … }.
  if (isObject(topo) && isObject(topo['model_config'])) topo = topo['model_config'];
  const topology = parseTopology(file, topo);
  const manifest = json['weightsManifest'];
  if (!Array.isArray(manifest)) throw new KerasModelError(file, 'no weightsManifest');
  const tensors = new Map<string, FileVariable>();
  const dir = dirname(file);
  for (const group of manifest as Json[]) {
    const paths = Array.isArray(group['paths']) ? (group['paths'] as string[]) : [];
    const entries = Array.isArray(group['weights']) ? (group['weights'] as ManifestEntry[]) : [];
    const parts = await Promise.all(paths.map((p) => bytesOf(join(dir, p))));
    const data = Buffer.concat(parts);
    let offset = 0;
    for (const w of entries) {
      if (w.quantization) throw new KerasModelError(file, `weight ${w.name} is quantized: convert the model without quantization`);
      if (w.dtype !== 'float32') throw new KerasModelError(file, `weight ${w.name} is ${w.dtype}: Metaloop reads float32 weights`);
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (offset + 4 * n > data.byteLength) throw new KerasModelError(file, `the weight files (${paths.join(', ')}) end before weight ${w.name}`);
      const values = new Float32Array(n);
      const view = new DataView(data.buffer, data.byteOffset + offset, 4 * n);
      for (let i = 0; i < n; i++) values[i] = view.getFloat32(4 * i, true);
      tensors.set(w.name, { shape: [...w.shape], data: values });
      offset += 4 * n;
    }
  }
  return {
    format: 'tfjs-layers',
    topology,
    producer: typeof json['generatedBy'] === 'string' ? json['generatedBy'] : 'TF.js',
    variables: (layer, keras) => {
      const found = keras.map((k) => tensors.get(`${layer.name}/${k}`));
      if (found.every((v) => v === undefined)) return undefined;
      return found.map((v, i) => {
        if (!v) throw new KerasModelError(file, `no weight ${layer.name}/${keras[i]!} in the weightsManifest`, layer.name, layer.className);
        return v;
      });
    },
  };
}

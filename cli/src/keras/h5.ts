/**
 * `model.weights.h5`, the variables of a `.keras` archive, read and written with h5wasm (the HDF5
 * C library compiled to WebAssembly; its Node entry reaches the real file system, so the bytes go
 * through a temporary file). Layout (Keras 3's H5IOStore): one group per layer at
 * `layers/<snake_case class name>[_<n>]`, its variables as datasets `vars/0`, `vars/1`, … in the
 * layer's own order, and the layer's name as the `name` attribute of `vars`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KerasModelError } from '../errors.js';

/** One layer's variables in the file. */
export interface H5Layer {
  /** Group path, e.g. `layers/conv2d_1`. */
  readonly path: string;
  /** The `name` attribute of its `vars` group (the Keras layer's name), when written. */
  readonly name?: string;
  readonly vars: readonly { readonly shape: readonly number[]; readonly data: Float32Array }[];
}

type H5wasm = typeof import('h5wasm/node');
type Group = InstanceType<H5wasm['Group']>;
let loaded: Promise<H5wasm> | null = null;

/** h5wasm, loaded (and its WebAssembly compiled) on first use only. */
async function h5(): Promise<H5wasm> {
  loaded ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m;
  });
  return loaded;
}

async function withTempFile<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'metaloop-h5-'));
  try {
    return await fn(join(dir, WEIGHTS_FILE));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const WEIGHTS_FILE = 'model.weights.h5';

/** Every group holding a `vars` group, by path (layers' order as the file lists them). */
export async function readWeightsH5(file: string, bytes: Uint8Array): Promise<Map<string, H5Layer>> {
  const m = await h5();
  return withTempFile(async (path) => {
    await writeFile(path, bytes);
    let f: InstanceType<H5wasm['File']>;
    try {
      f = new m.File(path, 'r');
    } catch (err) {
      throw new KerasModelError(file, `model.weights.h5 is not an HDF5 file: ${(err as Error).message}`);
    }
    try {
      if (f.file_id < 0n) throw new KerasModelError(file, 'model.weights.h5 is not an HDF5 file');
      const out = new Map<string, H5Layer>();
      const walk = (g: Group, at: string) => {
        for (const key of g.keys()) {
          const child = g.get(key);
          if (!(child instanceof m.Group)) continue;
          const childPath = at ? `${at}/${key}` : key;
          if (key === 'vars') {
            const name = child.attrs['name']?.json_value;
            const vars = child
              .keys()
              .filter((k) => /^\d+$/.test(k))
              .sort((a, b) => Number(a) - Number(b))
              .map((k) => readVariable(m, file, child, k, `${childPath}/${k}`));
            out.set(at, { path: at, ...(typeof name === 'string' ? { name } : {}), vars });
          } else {
            walk(child, childPath);
          }
        }
      };
      walk(f, '');
      return out;
    } finally {
      f.close();
    }
  });
}

function readVariable(m: H5wasm, file: string, group: Group, key: string, where: string): H5Layer['vars'][number] {
  const ds = group.get(key);
  if (!(ds instanceof m.Dataset)) throw new KerasModelError(file, `model.weights.h5: ${where} is not a dataset`);
  if (ds.attrs['dtype']?.json_value === 'bfloat16') throw new KerasModelError(file, `model.weights.h5: ${where} is bfloat16: save the model in float32 (keras.config.set_dtype_policy("float32"))`);
  const shape = ds.shape ?? [];
  const value = ds.value;
  if (!(value instanceof Float32Array || value instanceof Float64Array)) {
    throw new KerasModelError(file, `model.weights.h5: ${where} has dtype ${JSON.stringify(ds.dtype)}; Metaloop reads float32 (or float64) variables: save the model in float32`);
  }
  return { shape, data: value instanceof Float32Array ? value : Float32Array.from(value) };
}

/** A `model.weights.h5` file's bytes: `groups` in order, the model's own (empty) `vars` named `modelName`. */
export async function writeWeightsH5(groups: readonly H5Layer[], modelName: string): Promise<Uint8Array> {
  const m = await h5();
  return withTempFile(async (path) => {
    const f = new m.File(path, 'w');
    try {
      for (const g of groups) {
        let at: Group = f;
        for (const part of g.path.split('/')) at = (at.get(part) as Group | null) ?? at.create_group(part);
        const vars = at.create_group('vars');
        if (g.name !== undefined) vars.create_attribute('name', g.name);
        g.vars.forEach((v, i) => vars.create_dataset({ name: String(i), data: v.data, shape: [...v.shape], dtype: '<f' }));
      }
      f.create_group('vars').create_attribute('name', modelName);
    } finally {
      f.close();
    }
    return new Uint8Array(await readFile(path));
  });
}

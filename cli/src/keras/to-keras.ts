/**
 * Write a Keras 3 `.keras` file (archive.ts, h5.ts): a Functional model config in Keras 3's own
 * form (modules, `__keras_tensor__` call arguments with shapes), its layers in the order Keras
 * derives from the graph, and each layer's variables at the h5 group Keras reads them from.
 */
import { writeKerasArchive } from './archive.js';
import { EXPORT_INPUT, inputLayerName, kerasLayerOrder, type ExportModel } from './export-model.js';
import { writeWeightsH5, type H5Layer } from './h5.js';
import { h5Paths } from './topology.js';

const F32 = 'float32';

function kerasTensor(shape: readonly number[], from: string) {
  return { class_name: '__keras_tensor__', config: { shape: [null, ...shape], dtype: F32, keras_history: [from, 0, 0] } };
}

/** config.json of the model. */
export function kerasConfig(m: ExportModel): Record<string, unknown> {
  const inputName = inputLayerName(m);
  const byName = new Map(m.layers.map((l) => [l.name, l]));
  const ref = (n: string) => (n === EXPORT_INPUT ? inputName : n);
  const layers = kerasLayerOrder(m).map((name) => {
    if (name === EXPORT_INPUT) {
      return {
        module: 'keras.layers',
        class_name: 'InputLayer',
        config: { batch_shape: [null, ...m.input], dtype: F32, sparse: false, ragged: false, name: inputName, optional: false },
        registered_name: null,
        name: inputName,
        inbound_nodes: [],
      };
    }
    const l = byName.get(name)!;
    const args = l.inputs.map((src, i) => kerasTensor(l.inputShapes[i]!, ref(src)));
    return {
      module: 'keras.layers',
      class_name: l.type,
      config: { name: l.name, trainable: true, dtype: F32, ...l.options },
      registered_name: null,
      build_config: { input_shape: l.inputs.length === 1 ? [null, ...l.inputShapes[0]!] : l.inputShapes.map((s) => [null, ...s]) },
      name: l.name,
      inbound_nodes: [{ args: l.inputs.length === 1 ? args : [args], kwargs: {} }],
    };
  });
  return {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: { name: m.name, trainable: true, layers, input_layers: [inputName, 0, 0], output_layers: [m.layers[m.layers.length - 1]!.name, 0, 0] },
    registered_name: 'Functional',
    build_config: { input_shape: null },
    compile_config: null,
  };
}

/** The bytes of a `.keras` file holding `m`. */
export async function kerasFile(m: ExportModel, generatedBy: string): Promise<Uint8Array> {
  const order = kerasLayerOrder(m);
  const byName = new Map(m.layers.map((l) => [l.name, l]));
  const inputName = inputLayerName(m);
  const classes = order.map((n) => (n === EXPORT_INPUT ? 'InputLayer' : byName.get(n)!.type));
  const paths = h5Paths(classes);
  const groups: H5Layer[] = order.map((n, i) => ({
    path: paths[i]!,
    name: n === EXPORT_INPUT ? inputName : n,
    vars: n === EXPORT_INPUT ? [] : byName.get(n)!.variables.map((v) => ({ shape: v.shape, data: v.data })),
  }));
  const weights = await writeWeightsH5(groups, m.name);
  // A fixed date: the same model gives the same file.
  return writeKerasArchive({ config: kerasConfig(m), metadata: { keras_version: '3.15.1', date_saved: '1980-01-01@00:00:00', generated_by: generatedBy }, weights });
}

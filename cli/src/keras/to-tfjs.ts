/**
 * Write a TF.js Layers model (`model.json` with `format: layers-model` and one weights file), the
 * form `tf.loadLayersModel` reads: the Keras 2 topology TF.js speaks (`class_name: Model`,
 * `inbound_nodes: [[[name, 0, 0, {}], …]]`, `batch_input_shape`), weights named
 * `<layer>/<variable>` in one little-endian float32 shard. Where TF.js lacks a Keras 3 spelling, the
 * layer is written as TF.js' equivalent (tfjsLayers).
 */
import type { ExportLayer, ExportModel } from './export-model.js';
import { EXPORT_INPUT, inputLayerName } from './export-model.js';

export const TFJS_WEIGHTS_FILE = 'group1-shard1of1.bin';

/** One layer entry of a TF.js topology. */
interface TfjsLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, Record<string, never>][][];
}

/** Keras 3 activation names TF.js knows under another name; `leaky_relu` has no TF.js activation (a LeakyReLU layer follows instead). */
const TFJS_ACTIVATION: Readonly<Record<string, string>> = { silu: 'swish', swish: 'swish' };

/** Keras' leaky_relu activation slope (keras.activations.leaky_relu's default). */
const LEAKY_RELU_ACTIVATION_SLOPE = 0.2;

/**
 * The TF.js layer(s) of one layer: its Keras options in TF.js' spelling, and an activation TF.js
 * does not have as a separate layer after it (its weights stay with the first).
 */
export function tfjsLayers(l: ExportLayer, inbound: TfjsLayer['inbound_nodes']): TfjsLayer[] {
  const config: Record<string, unknown> = { name: l.name, trainable: true, dtype: 'float32', ...l.options };
  let className = l.type;
  let after: TfjsLayer | undefined;
  const activation = config['activation'];
  if (typeof activation === 'string') {
    if (activation === 'leaky_relu') {
      config['activation'] = 'linear';
      after = { name: `${l.name}_leaky_relu`, class_name: 'LeakyReLU', config: { name: `${l.name}_leaky_relu`, alpha: LEAKY_RELU_ACTIVATION_SLOPE }, inbound_nodes: [[[l.name, 0, 0, {}]]] };
    } else config['activation'] = TFJS_ACTIVATION[activation] ?? activation;
  }
  if (className === 'LeakyReLU' && 'negative_slope' in config) {
    config['alpha'] = config['negative_slope'];
    delete config['negative_slope'];
  }
  if (className === 'ReLU' && typeof config['negative_slope'] === 'number') {
    // TF.js' ReLU has max_value only: a leaky one is its LeakyReLU (capped: not expressible, refused on export).
    const slope = config['negative_slope'];
    delete config['negative_slope'];
    delete config['threshold'];
    if (slope > 0) {
      className = 'LeakyReLU';
      config['alpha'] = slope;
      delete config['max_value'];
    }
  }
  const first: TfjsLayer = { name: l.name, class_name: className, config, inbound_nodes: inbound };
  return after ? [first, after] : [first];
}

/**
 * A layer's variables as TF.js takes them. TF.js' BatchNormalization reads γ and β in a training
 * call even when it has none (center / scale false fails there): such a layer is written with
 * `center`/`scale` true and β = 0 / γ = 1, which computes the same.
 */
export function tfjsVariables(l: ExportLayer): { options: Record<string, unknown>; variables: ExportLayer['variables'] } {
  if (l.type !== 'BatchNormalization' || (l.options['center'] !== false && l.options['scale'] !== false)) return { options: { ...l.options }, variables: l.variables };
  const channels = l.shape.at(-1)!;
  const vars = [...l.variables];
  const at = (k: string) => vars.findIndex((v) => v.keras === k);
  if (l.options['scale'] === false) vars.splice(0, 0, { keras: 'gamma', shape: [channels], data: new Float32Array(channels).fill(1) });
  if (l.options['center'] === false) vars.splice(at('moving_mean'), 0, { keras: 'beta', shape: [channels], data: new Float32Array(channels) });
  return { options: { ...l.options, center: true, scale: true }, variables: vars };
}

export interface TfjsModel {
  /** model.json's content. */
  readonly modelJson: Record<string, unknown>;
  /** The weights file's bytes (TFJS_WEIGHTS_FILE). */
  readonly weights: Uint8Array;
}

/** The TF.js Layers model of `m`. */
export function tfjsModel(m: ExportModel, generatedBy: string): TfjsModel {
  const inputName = inputLayerName(m);
  const renamed = new Map<string, string>([[EXPORT_INPUT, inputName]]);
  const layers: TfjsLayer[] = [{ name: inputName, class_name: 'InputLayer', config: { batch_input_shape: [null, ...m.input], dtype: 'float32', sparse: false, name: inputName }, inbound_nodes: [] }];
  const specs: { name: string; shape: number[]; dtype: 'float32' }[] = [];
  const chunks: Float32Array[] = [];
  for (const layer of m.layers) {
    const inbound: TfjsLayer['inbound_nodes'] = [layer.inputs.map((i) => [renamed.get(i) ?? i, 0, 0, {}])];
    const { options, variables } = tfjsVariables(layer);
    const l = { ...layer, options, variables };
    const entries = tfjsLayers(l, inbound);
    layers.push(...entries);
    renamed.set(l.name, entries[entries.length - 1]!.name);
    for (const v of l.variables) {
      specs.push({ name: `${l.name}/${v.keras}`, shape: [...v.shape], dtype: 'float32' });
      chunks.push(v.data);
    }
  }
  const total = chunks.reduce((a, c) => a + c.length, 0);
  const weights = new Uint8Array(total * 4);
  const view = new DataView(weights.buffer);
  let off = 0;
  for (const c of chunks) for (let i = 0; i < c.length; i++, off += 4) view.setFloat32(off, c[i]!, true);
  const output = renamed.get(m.layers[m.layers.length - 1]!.name)!;
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy,
      convertedBy: null,
      modelTopology: {
        class_name: 'Model',
        config: { name: m.name, layers, input_layers: [[inputName, 0, 0]], output_layers: [[output, 0, 0]] },
        keras_version: 'tfjs-layers 4.22.0',
        backend: 'tensor_flow.js',
      },
      weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights: specs }],
    },
    weights,
  };
}

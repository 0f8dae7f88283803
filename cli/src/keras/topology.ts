/**
 * A Keras model's topology, read from Keras 3's `config.json` or a TF.js Layers `modelTopology`
 * (Keras 2's spelling), into one neutral form: the input (name, shape) and the other layers in
 * Keras' order, each with its class, name, config and the names of the layers it reads. Sequential
 * and Functional models; one input, one output, each layer called once. The layer classes and
 * options are judged later (from-keras.ts): here only the structure.
 */
import { KerasModelError } from '../errors.js';

export interface KerasNode {
  readonly className: string;
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** The layers whose outputs it takes, in order (the input layer by its name). */
  readonly inbound: readonly string[];
  /** Where Keras 3 keeps its variables in model.weights.h5 (`layers/conv2d_1`). */
  readonly h5Path: string;
}

export interface KerasTopology {
  readonly modelClass: 'Sequential' | 'Functional';
  readonly modelName: string;
  /** The model input: its layer's name and its shape without the batch dimension. */
  readonly input: { readonly name: string; readonly shape: readonly number[] };
  /** Every layer but the input, in Keras' order (each after the layers it reads). */
  readonly layers: readonly KerasNode[];
  /** The layer whose output is the model's. */
  readonly output: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Keras' snake_case of a class name (keras.src.utils.naming.to_snake_case). */
export function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** The h5 group of each layer of a model's `layers` list: snake_case class name, `_1`, `_2`… for repeats. */
export function h5Paths(classNames: readonly string[]): string[] {
  const used = new Map<string, number>();
  return classNames.map((c) => {
    const base = snakeCase(c);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    return `layers/${n === undefined ? base : `${base}_${n + 1}`}`;
  });
}

const NESTED = new Set(['Sequential', 'Functional', 'Model']);

/** The shape without the batch dimension from `batch_shape` / `batch_input_shape` ([null, 28, 28, 1]). */
function batchShape(file: string, layer: string, className: string, config: Json): number[] | undefined {
  const raw = config['batch_shape'] ?? config['batch_input_shape'];
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || raw.length < 2 || raw.slice(1).some((d) => !Number.isInteger(d) || (d as number) < 1)) {
    throw new KerasModelError(file, `input shape ${JSON.stringify(raw)}: every dimension but the batch must be a fixed whole number`, layer, className);
  }
  return (raw as number[]).slice(1);
}

function layerEntry(file: string, raw: unknown, index: number): { className: string; name: string; config: Json; raw: Json } {
  if (!isObject(raw) || typeof raw['class_name'] !== 'string' || !isObject(raw['config'])) {
    throw new KerasModelError(file, `layer ${index} of the model config has no class_name and config: not a Keras model config`);
  }
  const config = raw['config'];
  const name = typeof raw['name'] === 'string' ? raw['name'] : typeof config['name'] === 'string' ? config['name'] : '';
  if (!name) throw new KerasModelError(file, `layer ${index} (${raw['class_name']}) has no name`);
  if (NESTED.has(raw['class_name'])) {
    throw new KerasModelError(file, 'a nested model: Metaloop reads one flat model; build the outer model from the inner model\'s layers (or save the inner model alone)', name, raw['class_name']);
  }
  return { className: raw['class_name'], name, config, raw };
}

/** The inbound layer names of one Functional layer: Keras 3 `{args, kwargs}` nodes or Keras 2 `[[name, node, tensor, kwargs], …]`. */
function inboundOf(file: string, name: string, className: string, nodes: unknown): string[] {
  if (!Array.isArray(nodes) || nodes.length === 0) return [];
  if (nodes.length > 1) throw new KerasModelError(file, `the layer is called ${nodes.length} times (a shared layer): Metaloop calls each layer once`, name, className);
  const node: unknown = nodes[0];
  const names: string[] = [];
  const history = (h: unknown) => {
    if (!Array.isArray(h) || typeof h[0] !== 'string') throw new KerasModelError(file, `unreadable inbound node ${JSON.stringify(h)}`, name, className);
    if ((h[1] ?? 0) !== 0 || (h[2] ?? 0) !== 0) {
      throw new KerasModelError(file, `it reads output ${String(h[2])} of call ${String(h[1])} of ${h[0]}: Metaloop layers have one call and one output`, name, className);
    }
    names.push(h[0]);
  };
  if (Array.isArray(node)) {
    for (const t of node) history(t); // Keras 2: [[name, node, tensor, kwargs], ...]
    return names;
  }
  if (!isObject(node)) throw new KerasModelError(file, 'unreadable inbound node', name, className);
  const tensor = (t: unknown) => {
    if (!isObject(t) || t['class_name'] !== '__keras_tensor__' || !isObject(t['config'])) {
      throw new KerasModelError(file, `a call argument that is not a tensor of the model (${JSON.stringify(t)?.slice(0, 80)}): Metaloop layers take their inputs only`, name, className);
    }
    history(t['config']['keras_history']);
  };
  for (const arg of Array.isArray(node['args']) ? node['args'] : []) {
    if (Array.isArray(arg)) arg.forEach(tensor);
    else tensor(arg);
  }
  if (isObject(node['kwargs'])) {
    for (const [k, v] of Object.entries(node['kwargs'])) {
      if (v === null || v === undefined) continue;
      if (isObject(v) && v['class_name'] === '__keras_tensor__') throw new KerasModelError(file, `call argument ${k} is a tensor: Metaloop layers take their inputs only`, name, className);
      throw new KerasModelError(file, `call argument ${k}=${JSON.stringify(v)}: Metaloop calls layers with their inputs only`, name, className);
    }
  }
  return names;
}

/** One `[name, node, tensor]` of input_layers / output_layers (Keras 3 may write a single one unwrapped). */
function endpoints(file: string, what: string, raw: unknown): string[] {
  if (!Array.isArray(raw)) throw new KerasModelError(file, `the model config has no ${what}`);
  const list = typeof raw[0] === 'string' ? [raw] : raw;
  return list.map((e) => {
    if (!Array.isArray(e) || typeof e[0] !== 'string') throw new KerasModelError(file, `unreadable ${what} ${JSON.stringify(raw)}`);
    return e[0];
  });
}

/** Parse a model config: `{ class_name: Sequential | Functional | Model, config: { layers, … } }`. */
export function parseTopology(file: string, model: unknown): KerasTopology {
  if (!isObject(model) || typeof model['class_name'] !== 'string' || !isObject(model['config'])) {
    throw new KerasModelError(file, 'not a Keras model config (expected { class_name, config: { layers } })');
  }
  const cls = model['class_name'];
  const config = model['config'];
  const modelName = typeof config['name'] === 'string' ? config['name'] : 'model';
  if (!Array.isArray(config['layers'])) {
    throw new KerasModelError(file, `the model is a ${cls}: Metaloop reads Sequential and Functional models (a subclassed model has no layer graph to read)`);
  }
  const entries = config['layers'].map((l, i) => layerEntry(file, l, i));
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new KerasModelError(file, 'two layers have this name', e.name, e.className);
    seen.add(e.name);
  }
  if (cls === 'Sequential') return sequential(file, modelName, config, entries);
  if (cls === 'Functional' || cls === 'Model') return functional(file, modelName, config, entries);
  throw new KerasModelError(file, `the model is a ${cls}: Metaloop reads Sequential and Functional models`);
}

function sequential(file: string, modelName: string, config: Json, entries: ReturnType<typeof layerEntry>[]): KerasTopology {
  const first = entries[0];
  if (!first) throw new KerasModelError(file, 'the Sequential model has no layers');
  let shape: number[] | undefined;
  let inputName = 'input_layer';
  let rest = entries;
  if (first.className === 'InputLayer') {
    shape = batchShape(file, first.name, first.className, first.config);
    inputName = first.name;
    rest = entries.slice(1);
  } else {
    shape = batchShape(file, first.name, first.className, first.config);
  }
  if (!shape && Array.isArray(config['build_input_shape'])) shape = batchShape(file, modelName, 'Sequential', { batch_shape: config['build_input_shape'] });
  if (!shape) throw new KerasModelError(file, 'the model has no input shape: give it one (keras.Input(shape=…) as its first layer)');
  if (rest.length === 0) throw new KerasModelError(file, 'the Sequential model has no layers after its input');
  const paths = h5Paths(rest.map((e) => e.className)); // Sequential.layers leaves out the InputLayer
  const layers = rest.map((e, i) => ({ className: e.className, name: e.name, config: e.config, inbound: [i === 0 ? inputName : rest[i - 1]!.name], h5Path: paths[i]! }));
  return { modelClass: 'Sequential', modelName, input: { name: inputName, shape }, layers, output: rest[rest.length - 1]!.name };
}

function functional(file: string, modelName: string, config: Json, entries: ReturnType<typeof layerEntry>[]): KerasTopology {
  const inputs = endpoints(file, 'input_layers', config['input_layers']);
  const outputs = endpoints(file, 'output_layers', config['output_layers']);
  if (inputs.length !== 1) throw new KerasModelError(file, `the model has ${inputs.length} inputs (${inputs.join(', ')}): Metaloop models take one`);
  if (outputs.length !== 1) throw new KerasModelError(file, `the model has ${outputs.length} outputs (${outputs.join(', ')}): Metaloop models give one`);
  const inputName = inputs[0]!;
  const paths = h5Paths(entries.map((e) => e.className)); // Functional.layers includes the InputLayer
  const inputEntry = entries.find((e) => e.name === inputName);
  if (!inputEntry || inputEntry.className !== 'InputLayer') throw new KerasModelError(file, `the model's input ${inputName} is not an InputLayer of the config`);
  const shape = batchShape(file, inputEntry.name, inputEntry.className, inputEntry.config);
  if (!shape) throw new KerasModelError(file, 'the input has no shape', inputEntry.name, inputEntry.className);
  const layers: KerasNode[] = [];
  const defined = new Set([inputName]);
  entries.forEach((e, i) => {
    if (e.name === inputName) return;
    if (e.className === 'InputLayer') throw new KerasModelError(file, 'a second input: Metaloop models take one', e.name, e.className);
    const inbound = inboundOf(file, e.name, e.className, e.raw['inbound_nodes']);
    if (inbound.length === 0) throw new KerasModelError(file, 'the layer is never called in the model', e.name, e.className);
    for (const src of inbound) {
      if (!defined.has(src)) throw new KerasModelError(file, `it reads ${src}, which is not a layer listed before it`, e.name, e.className);
    }
    defined.add(e.name);
    layers.push({ className: e.className, name: e.name, config: e.config, inbound, h5Path: paths[i]! });
  });
  const output = outputs[0]!;
  if (!layers.some((l) => l.name === output)) throw new KerasModelError(file, `the model's output ${output} is not one of its layers`);
  // Every layer must lead to the output (the graph's output is its last layer).
  const used = new Set([output]);
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i]!;
    if (used.has(l.name)) l.inbound.forEach((s) => used.add(s));
  }
  const dead = layers.filter((l) => !used.has(l.name));
  if (dead.length > 0) throw new KerasModelError(file, `the model's output does not depend on it (nor on ${dead.length - 1} other layer(s)): remove unused layers`, dead[0]!.name, dead[0]!.className);
  if (layers[layers.length - 1]!.name !== output) {
    // Keras lists layers in call order; the output comes last unless a later layer is unused (refused above).
    throw new KerasModelError(file, `the model's output ${output} is not its last layer`);
  }
  return { modelClass: 'Functional', modelName, input: { name: inputName, shape }, layers, output };
}

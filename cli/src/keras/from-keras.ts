/**
 * A Keras topology (topology.ts) → Metaloop's `kind: layers` graph, and the file's variables → θ₀
 * of the compiled graph's parameters (`init: weights`). Each layer keeps its Keras class as `type`,
 * its name, and its config keys as they are (the layer-graph schema of @metaloop/shared reads Keras'
 * own spelling and refuses what it cannot honour); `inputs` is written where a layer does not read
 * the layer listed before it.
 */
import { KerasModelError } from '../errors.js';
import type { KerasNode, KerasTopology } from './topology.js';

/** One layer of the `kind: layers` graph as the run spec spells it. */
export type GraphLayer = { type: string; name: string; inputs?: string[] } & Record<string, unknown>;

/** The `kind: layers` model a Keras file becomes (before the spec's own checks). */
export interface LayersModelDoc {
  kind: 'layers';
  input: number[];
  layers: GraphLayer[];
}

/** A parameter tensor of θ₀: Metaloop name (`conv0.w`), shape, values. */
export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A Keras variable as a file holds it. */
export interface FileVariable {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** What the weights need of a compiled graph node (@metaloop/shared's GraphNode). */
export interface WeightedNode {
  readonly name: string;
  readonly type: string;
  /** Wire name, shape and Keras variable name (kernel, bias, gamma, …) of each parameter, in wire order. */
  readonly params: readonly { readonly name: string; readonly shape: readonly number[]; readonly keras: string }[];
}

/**
 * Keras variables of a layer that are no Metaloop parameter, after its parameters in Keras' order:
 * batch norm's moving statistics (MAML normalises with each batch's statistics; export writes them).
 */
export const EXTRA_VARIABLES: Readonly<Record<string, readonly string[]>> = {
  BatchNormalization: ['moving_mean', 'moving_variance'],
};

/** The reserved name of the model input in `inputs:`. */
export const INPUT = 'input';

function refuse(file: string, node: KerasNode, problem: string): never {
  throw new KerasModelError(file, problem, node.name, node.className);
}

/** Convert a Keras topology to the `kind: layers` graph; `supported` lists the layer types Metaloop has. */
export function fromKeras(file: string, topology: KerasTopology, supported: readonly string[]): LayersModelDoc {
  const layers: GraphLayer[] = [];
  let previous = topology.input.name;
  for (const node of topology.layers) {
    if (!supported.includes(node.className)) refuse(file, node, `Keras class ${node.className} is not supported; Metaloop reads ${[...supported].sort().join(', ')}`);
    if (node.name === INPUT) refuse(file, node, `the name "${INPUT}" is reserved for the model input in Metaloop's graph; rename the layer`);
    const { name: _name, ...config } = node.config;
    const layer: GraphLayer = { type: node.className, name: node.name };
    const sequential = node.inbound.length === 1 && node.inbound[0] === previous;
    if (!sequential) layer.inputs = node.inbound.map((n) => (n === topology.input.name ? INPUT : n));
    layers.push(Object.assign(layer, config));
    previous = node.name;
  }
  return { kind: 'layers', input: [...topology.input.shape], layers };
}

/** The file's variables of each layer, by Keras variable names (in Keras' order). */
export type VariablesOf = (layer: KerasNode, keras: readonly string[]) => readonly FileVariable[] | undefined;

export interface FileWeights {
  /** θ₀ of the model's parameters in wire order. */
  readonly tensors: NamedTensor[];
  /** What was read but has no use in Metaloop (said to the user). */
  readonly notes: string[];
}

/** θ₀ from the file: every parameter of every graph node, its shape checked against the graph's. */
export function kerasWeights(file: string, topology: KerasTopology, nodes: readonly WeightedNode[], variables: VariablesOf): FileWeights {
  const byName = new Map(topology.layers.map((l) => [l.name, l]));
  const tensors: NamedTensor[] = [];
  const notes: string[] = [];
  for (const node of nodes) {
    if (node.params.length === 0) continue;
    const layer = byName.get(node.name);
    if (!layer) throw new KerasModelError(file, `the model's layer ${node.name} is not in the file`);
    const extra = EXTRA_VARIABLES[layer.className] ?? [];
    const names = [...node.params.map((p) => p.keras), ...extra];
    const vars = variables(layer, names);
    if (!vars) refuse(file, layer, `the file has no weights for it (expected ${names.join(', ')})`);
    if (vars.length !== names.length) refuse(file, layer, `the file has ${vars.length} variable(s) for it, Metaloop's ${layer.className} with this config has ${names.length} (${names.join(', ')})`);
    node.params.forEach((p, i) => {
      const v = vars[i]!;
      if (v.shape.join(',') !== p.shape.join(',')) {
        refuse(file, layer, `its ${p.keras} has shape [${v.shape.join(', ')}] in the file, the model (with this task's input) needs [${p.shape.join(', ')}]`);
      }
      tensors.push({ name: p.name, shape: [...p.shape], data: v.data });
    });
    if (extra.length > 0) notes.push(`${layer.name}: ${extra.join(' and ')} not used (Metaloop's ${layer.className} uses the statistics of each batch, as MAML does)`);
  }
  return { tensors, notes };
}

/**
 * A model graph compiled from its layer list (the run spec's `model.layers`, or a preset's): each
 * layer's options parsed by its own schema, names given where missing (as Keras names them:
 * `conv2d`, `conv2d_1`, …), inputs resolved (earlier layers only, so a graph can have no cycle),
 * shapes inferred in order, and the parameter layout with each tensor's initialiser.
 *
 * Pure JavaScript: the coordinator validates graphs and builds θ₀ without tfjs. Every problem is
 * collected (not just the first) with the layer's index, its name, the option to blame when one is,
 * what it got and what fits.
 */
import type { TensorSpec } from '../codec.js';
import { ModelError } from '../errors.js';
import { issueText, showValue, valueAt } from '../issue-text.js';
import type { Initializer } from './initializers.js';
import { dropKerasDefaults } from './options.js';
import { layerDef, LAYER_TYPES } from './registry.js';
import type { AnyLayerDef, ParamDecl, Shape } from './types.js';

/** The name `inputs:` uses for the model's input. */
export const MODEL_INPUT = 'input';

/** One layer as declared: `type`, optional `name` and `inputs`, then its Keras options. */
export interface LayerSpec {
  readonly type: string;
  readonly name?: string;
  readonly inputs?: readonly string[] | string;
  readonly [option: string]: unknown;
}

export interface GraphNode {
  /** Position in the layer list. */
  readonly index: number;
  readonly name: string;
  readonly type: string;
  readonly def: AnyLayerDef;
  /** Options after the layer's schema (defaults applied). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Names of the nodes it reads (`input`: the model's input). */
  readonly inputs: readonly string[];
  readonly inputShapes: readonly Shape[];
  /** Output shape of one example. */
  readonly shape: Shape;
  /** Its parameters, `name` being the wire name `<layer>.<param>`. */
  readonly params: readonly (ParamDecl & { readonly name: string })[];
}

export interface ModelGraph {
  /** Shape of one input example. */
  readonly input: Shape;
  readonly nodes: readonly GraphNode[];
  /** Shape of one output example ([task outputs]). */
  readonly output: Shape;
  /** The model's tensors in wire order, and each one's initialiser (same order). */
  readonly layout: readonly TensorSpec[];
  readonly inits: readonly Initializer[];
  /** The last parameterised layer (ANIL's head) and its tensors' names. */
  readonly headLayer: string;
  readonly head: readonly string[];
}

/** One problem: the layer's index (-1: the graph as a whole), the option when one is to blame. */
export interface GraphProblem {
  readonly index: number;
  readonly option?: string;
  readonly message: string;
}

/** Keras' default layer name: the class name in snake_case (`Conv2D` → `conv2d`, `ReLU` → `re_lu`). */
export function kerasName(type: string): string {
  return type
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

function optionKeys(def: AnyLayerDef): string[] {
  const s = def.schema as unknown as { shape?: Record<string, unknown>; in?: { shape?: Record<string, unknown> } };
  return Object.keys(s.shape ?? s.in?.shape ?? {});
}

const fmt = (s: Shape) => `[${s.join(', ')}]`;

/** Names: explicit ones kept (checked), the rest as Keras would give them, skipping taken ones. */
function assignNames(layers: readonly LayerSpec[], problems: GraphProblem[]): string[] {
  const taken = new Set<string>();
  layers.forEach((l, i) => {
    if (l.name === undefined) return;
    if (typeof l.name !== 'string' || !NAME.test(l.name) || l.name === MODEL_INPUT) {
      problems.push({ index: i, option: 'name', message: `got ${JSON.stringify(l.name)}; a name is 1-64 letters, digits, _ or -, starting with a letter or _, and not "${MODEL_INPUT}" (that is the model's input)` });
    } else if (taken.has(l.name)) {
      problems.push({ index: i, option: 'name', message: `${JSON.stringify(l.name)} is already the name of an earlier layer: names must be unique` });
    }
    taken.add(String(l.name));
  });
  const counts = new Map<string, number>();
  return layers.map((l) => {
    if (typeof l.name === 'string') return l.name;
    const base = kerasName(String(l.type));
    for (;;) {
      const k = counts.get(base) ?? 0;
      counts.set(base, k + 1);
      const name = k === 0 ? base : `${base}_${k}`;
      if (!taken.has(name)) {
        taken.add(name);
        return name;
      }
    }
  });
}

/** Compile a layer list against the task's input shape and output count; problems instead of a graph when it does not fit. */
export function buildGraph(layers: readonly LayerSpec[], input: Shape, outputs: number): { graph?: ModelGraph; problems: GraphProblem[] } {
  const problems: GraphProblem[] = [];
  if (layers.length === 0) return { problems: [{ index: -1, message: 'a model needs at least one layer' }] };
  const names = assignNames(layers, problems);
  const lastDense = layers.map((l) => l.type).lastIndexOf('Dense');
  const shapes = new Map<string, Shape>([[MODEL_INPUT, input]]);
  const used = new Set<string>();
  const nodes: GraphNode[] = [];
  layers.forEach((layer, index) => {
    const name = names[index]!;
    const def = layerDef(String(layer.type));
    const fail = (message: string, option?: string) => problems.push(option === undefined ? { index, message } : { index, option, message });
    if (!def) return fail(`unknown layer type ${JSON.stringify(layer.type)}: supported are ${LAYER_TYPES.join(', ')}`, 'type');
    const { type: _type, name: _name, inputs: rawInputs, ...options } = layer;
    // Inputs: earlier layers (or the model input) only.
    const inputs = rawInputs === undefined ? [index === 0 ? MODEL_INPUT : names[index - 1]!] : typeof rawInputs === 'string' ? [rawInputs] : [...rawInputs];
    const earlier = [MODEL_INPUT, ...names.slice(0, index)];
    for (const i of inputs) {
      if (typeof i === 'string' && earlier.includes(i)) continue;
      const later = names.indexOf(String(i)) >= index;
      return fail(
        later
          ? `inputs names ${JSON.stringify(i)}, which is this layer or a later one: a layer may read only earlier layers (no cycles); earlier: ${earlier.join(', ')}`
          : `inputs names ${JSON.stringify(i)}, which is no layer: use ${MODEL_INPUT} or an earlier layer (${earlier.slice(1).join(', ') || 'none yet'})`,
        'inputs',
      );
    }
    const many = def.inputs === 'many';
    if (many ? inputs.length < 2 : inputs.length !== 1) {
      return fail(many ? `${def.type} joins two or more inputs: list them in inputs (got ${inputs.length})` : `${def.type} reads exactly one input, got ${inputs.length}`, 'inputs');
    }
    const inShapes = inputs.map((i) => shapes.get(i));
    if (inShapes.some((s) => s === undefined)) return; // an earlier layer failed: its problem is reported
    inputs.forEach((i) => used.add(i));
    const kept = dropKerasDefaults(options);
    if ('key' in kept) return fail(kept.message, kept.key);
    const parsed = def.schema.safeParse(kept.rest, { error: issueText });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          fail(`${def.type} has no option ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: its options are ${optionKeys(def).join(', ') || '(none)'}`, issue.keys[0]);
        } else {
          const option = issue.path.map(String).join('.') || undefined;
          const got = option === undefined ? undefined : valueAt(kept.rest, issue.path);
          fail(got === undefined ? `required: ${issue.message}` : `got ${showValue(got)}; ${issue.message}`, option);
        }
      }
      return;
    }
    const config = parsed.data;
    const ctx = { name, outputs, lastDense: index === lastDense };
    const shapesIn = inShapes as Shape[];
    try {
      const shape = def.shape(config, shapesIn, ctx);
      const params = (def.params?.(config, shapesIn, ctx) ?? []).map((p) => ({ ...p, name: `${name}.${p.param}` }));
      shapes.set(name, shape);
      nodes.push({ index, name, type: def.type, def, config, inputs, inputShapes: shapesIn, shape, params });
    } catch (err) {
      if (!(err instanceof ModelError)) throw err;
      fail(`${name} (${def.type}) gets ${shapesIn.map(fmt).join(' and ')}: ${err.message}`, err.option);
    }
  });
  if (problems.length > 0) return { problems };
  nodes.slice(0, -1).forEach((n) => {
    if (!used.has(n.name)) problems.push({ index: n.index, message: `the output of ${n.name} (${n.type}) is never used: connect it (inputs: [${n.name}]) or remove it; the model's output is the last layer` });
  });
  const last = nodes[nodes.length - 1]!;
  if (last.shape.length !== 1 || last.shape[0] !== outputs) {
    problems.push({
      index: last.index,
      message: `the model's output (the last layer, ${last.name} (${last.type})) has shape ${fmt(last.shape)}, the task needs [${outputs}]: end with a Dense (its units may be left out: the task's outputs), after a Flatten or global pooling for images`,
    });
  }
  if (problems.length > 0) return { problems };
  const params = nodes.flatMap((n) => n.params);
  const headNode = [...nodes].reverse().find((n) => n.params.length > 0);
  if (!headNode) return { problems: [{ index: -1, message: 'the model has no parameters: add a Dense (or another layer with weights)' }] };
  return {
    graph: {
      input,
      nodes,
      output: last.shape,
      layout: params.map((p) => ({ name: p.name, shape: [...p.shape] })),
      inits: params.map((p) => p.init),
      headLayer: headNode.name,
      head: headNode.params.map((p) => p.name),
    },
    problems,
  };
}

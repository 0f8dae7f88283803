/**
 * The functional forward pass of a compiled graph: parameters passed in by wire name, no state, so
 * an inner loop can differentiate through its own updates (twice, for second-order MAML). `tf` is
 * the caller's tfjs-core (the worker's, with its registered gradients); this file imports none.
 *
 * Per task: x [N, ...input] → [N, outputs]. Task-batched: parameters [T, ...shape] (each task its
 * own copy of θ), x [T, N, ...input] → [T, N, outputs]; each layer's `forwardBatched` (or its
 * forward with the tasks folded into the batch).
 */
import { ModelError } from '../errors.js';
import { MODEL_INPUT, type GraphNode, type ModelGraph } from './graph.js';
import type { Tensor, Tf } from './types.js';

function layerParams(node: GraphNode, params: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const p of node.params) {
    const t = params[p.name];
    if (!t) throw new ModelError(`parameter ${p.name} of layer ${node.name} (${node.type}) is missing from θ`, undefined, node.name);
    out[p.param] = t;
  }
  return out;
}

function runNode(tf: Tf, node: GraphNode, inputs: readonly Tensor[], p: Record<string, Tensor>, batched: boolean): Tensor {
  const def = node.def;
  if (!batched) return def.forward(tf, node.config, inputs, p);
  if (def.forwardBatched !== 'fold') return def.forwardBatched(tf, node.config, inputs, p);
  // Parameter-free and example-wise: [T, N, ...] → [T·N, ...] → forward → [T, N, ...].
  const [T, N] = inputs[0]!.shape as [number, number];
  const folded = inputs.map((x) => tf.reshape(x, [T * N, ...x.shape.slice(2)]));
  const y = def.forward(tf, node.config, folded, p);
  return tf.reshape(y, [T, N, ...y.shape.slice(1)]);
}

/** Hooks into a forward pass (per task only): export's batch-norm statistics (worker/src/bn-statistics.ts). */
export interface ForwardHooks {
  /** Called before each node with its inputs and parameters; a tensor returned replaces the node's own forward. */
  readonly node?: (node: GraphNode, inputs: readonly Tensor[], params: Readonly<Record<string, Tensor>>) => Tensor | undefined;
}

/** Forward pass of `graph` (see the file comment for shapes). Call inside tf.tidy. */
export function graphForward(tf: Tf, graph: ModelGraph, params: Readonly<Record<string, Tensor>>, x: Tensor, batched: boolean, hooks: ForwardHooks = {}): Tensor {
  const lead = batched ? 2 : 1;
  const want = [...x.shape.slice(0, lead), ...graph.input];
  const same = x.rank === want.length && x.shape.every((d, i) => d === want[i]);
  const values = new Map<string, Tensor>([[MODEL_INPUT, same ? x : tf.reshape(x, want)]]);
  let out: Tensor | undefined;
  for (const node of graph.nodes) {
    const inputs = node.inputs.map((n) => values.get(n)!);
    const p = layerParams(node, params);
    out = (!batched ? hooks.node?.(node, inputs, p) : undefined) ?? runNode(tf, node, inputs, p, batched);
    values.set(node.name, out);
  }
  return out!;
}

/** The largest activation of one example (values), the model input included: what bounds a batched pass's memory. */
export function largestActivation(graph: ModelGraph): number {
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  return Math.max(size(graph.input), ...graph.nodes.map((n) => size(n.shape)));
}

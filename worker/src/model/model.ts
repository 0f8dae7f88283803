/**
 * The worker's side of a model: the run spec's layer graph (compiled in @metaloop/shared: shapes,
 * layout, θ₀) bound to the worker's tfjs-core, the one with the project's second-order gradients
 * and training kernels registered (../tfjs-setup.ts). Every model — the presets mlp, conv4,
 * resnet12 and any `kind: layers` graph — runs through the same per-layer forwards.
 *
 * Two forms: per task (x [N, ...input], θ as is) and task-batched (x [T, N, ...input], θ with a
 * leading task axis: each task its own copy, so a shard's tasks run as one computation).
 */
import '../tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { graphForward, largestActivation, modelGraph, type ModelGraph, type RunSpec, type TensorSpec } from '@metaloop/shared';

/** Parameters by name (`l0.w`, `conv0.b`, …), as `paramLayout(spec)` names them. */
export type NamedTensors = Record<string, tf.Tensor>;

/**
 * A functional model: no state, parameters passed in, so an inner loop can differentiate through
 * its own updates. `forward` uses only ops with registered (and differentiable) gradients.
 */
export interface Model {
  readonly kind: string;
  /** The tensors this model reads, identical to `modelLayout(spec)` (θ may carry algorithm extras after them). */
  readonly layout: readonly TensorSpec[];
  forward(params: NamedTensors, x: tf.Tensor): tf.Tensor;
}

/** The task-batched form, with how many tasks one pass may hold and whether it is the default. */
export interface TaskBatchedModel extends Model {
  /** Most tasks in one batched pass (bounds memory; fixed per spec, never by load). */
  readonly maxTaskBatch: number;
  /**
   * Whether the engine batches by default on the active backend (elsewhere it loops unless asked).
   * Graphs with convolutions: only on a GPU, where per-kernel launch overhead dominates. On cpu,
   * wasm and libtensorflow on a CPU a conv step is compute-bound, and the per-task conv kernels
   * (XNNPACK, the GEMM of ../kernels, libtensorflow's) beat kh·kw batched products plus the im2col
   * copies (measured 1.5–3× slower per task on Conv4; bench/RESULTS.md, compute section). Other
   * graphs (Dense, Embedding, normalisation): always.
   */
  readonly batchByDefault: () => boolean;
}

/** True on a GPU backend: webgl, webgpu, or tfjs-node-gpu with libtensorflow on a GPU. */
export function onGpu(): boolean {
  const name = tf.getBackend();
  if (name === 'webgl' || name === 'webgpu') return true;
  return name === 'tensorflow' && (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
}

/** Most tasks in one batched pass (bounds memory; fixed so results never depend on load). */
export const MAX_TASK_BATCH = 32;

/** Largest activation (elements) of one batched pass: 8 Mi floats = 32 MiB. */
export const BATCH_ELEMENTS = 1 << 23;

/** Layer types whose task-batched form is slower than a loop of per-task kernels off a GPU. */
const CONVOLUTIONS = new Set(['Conv2D', 'Conv1D']);

/** Support + query examples of one task (the larger of the two passes bounds memory). */
function examplesPerTask(spec: RunSpec): number {
  const t = spec.task as { ways?: number; shots?: number; queries?: number };
  return (t.ways ?? 1) * Math.max(t.shots ?? 1, t.queries ?? 1);
}

export interface RunModels {
  readonly graph: ModelGraph;
  readonly perTask: Model;
  readonly batched: TaskBatchedModel;
}

/** Both forms of the spec's model. */
export function createModels(spec: RunSpec): RunModels {
  const graph = modelGraph(spec);
  const kind = spec.model.kind;
  const layout = graph.layout;
  const perTask: Model = { kind, layout, forward: (params, x) => graphForward(tf, graph, params, x, false) };
  const convs = graph.nodes.some((n) => CONVOLUTIONS.has(n.type));
  const batched: TaskBatchedModel = {
    kind,
    layout,
    maxTaskBatch: Math.max(1, Math.min(MAX_TASK_BATCH, Math.floor(BATCH_ELEMENTS / (examplesPerTask(spec) * largestActivation(graph))))),
    batchByDefault: convs ? onGpu : () => true,
    forward: (params, x) => graphForward(tf, graph, params, x, true),
  };
  return { graph, perTask, batched };
}

/** The per-task model of a spec (export, evaluation, tests). */
export function createModel(spec: RunSpec): Model {
  return createModels(spec).perTask;
}

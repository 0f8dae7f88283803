/**
 * Parameter layouts and deterministic initialisation, in plain JS so the coordinator needs no tfjs.
 * The model's part comes from its layer graph (model/); the worker's forward pass reads parameters
 * by these names and shapes, in this order; algorithm extras follow.
 */
import { layoutSize, type FlatTensors, type TensorSpec } from './codec.js';
import type { ModelGraph } from './model/graph.js';
import { drawInitializer } from './model/initializers.js';
import { compileModel } from './model/model.js';
import { Rng, taskSeed } from './seeds.js';
import type { RunSpec } from './spec.js';

/** Input and output sizes a task family gives a model; image families also give the image shape. */
export interface TaskDims {
  inputs: number;
  outputs: number;
  /** Shape of one input example ([1] for sinusoid, [H, W, C] for images). */
  inputShape: number[];
  image?: { size: number; channels: number };
  family: string;
}

export function taskDims(spec: Pick<RunSpec, 'task'>): TaskDims {
  const task = spec.task;
  switch (task.family) {
    case 'sinusoid':
      return { inputs: 1, outputs: 1, inputShape: [1], family: task.family };
    case 'synthetic-glyphs':
      return {
        inputs: task.imageSize * task.imageSize,
        outputs: task.ways,
        inputShape: [task.imageSize, task.imageSize, 1],
        image: { size: task.imageSize, channels: 1 },
        family: task.family,
      };
    case 'fewshot-images':
      return {
        inputs: task.imageSize * task.imageSize * task.channels,
        outputs: task.ways,
        inputShape: [task.imageSize, task.imageSize, task.channels],
        image: { size: task.imageSize, channels: task.channels },
        family: task.family,
      };
  }
}

/** The spec's model as a compiled layer graph (shapes, layout, initialisers): model/model.ts. */
export function modelGraph(spec: Pick<RunSpec, 'task' | 'model'>): ModelGraph {
  return compileModel(spec.model, taskDims(spec));
}

/** Shape of every tensor the model itself reads (no algorithm extras), in wire order. */
export function modelLayout(spec: Pick<RunSpec, 'task' | 'model'>): TensorSpec[] {
  return modelGraph(spec).layout.map((t) => ({ name: t.name, shape: [...t.shape] }));
}

/** Names of the model's output layer's tensors: the graph's last parameterised layer (ANIL adapts only these). */
export function headParamNames(spec: Pick<RunSpec, 'task' | 'model'>): string[] {
  return [...modelGraph(spec).head];
}

/** Names of the tensors the inner loop adapts: the head for anil, every model tensor otherwise. */
export function adaptedParamNames(spec: RunSpec): string[] {
  return spec.algorithm.kind === 'anil' ? headParamNames(spec) : modelLayout(spec).map((t) => t.name);
}

/**
 * Shape of every meta-learned tensor, in wire order: the model's, then the algorithm's extras —
 * `lr.<name>` (Meta-SGD: a learned inner rate per parameter, same shape) or `lslr.<name>` (MAML++:
 * a learned inner rate per adapted tensor and inner step, shape [innerSteps]).
 */
export function paramLayout(spec: RunSpec): TensorSpec[] {
  const model = modelLayout(spec);
  const a = spec.algorithm;
  if (a.kind === 'metasgd') return [...model, ...model.map((t) => ({ name: `lr.${t.name}`, shape: [...t.shape] }))];
  if (a.learnedLayerLr) {
    return [...model, ...adaptedParamNames(spec).map((name) => ({ name: `lslr.${name}`, shape: [a.innerSteps] }))];
  }
  return model;
}

/**
 * θ_0, seeded by the run seed: one stream `Rng(taskSeed(seed, 'init', 0, 0))` drawn in layout
 * order, each model tensor by its layer's Keras initialiser (model/initializers.ts: kernels
 * glorot_uniform unless the layer says otherwise, biases and offsets zeros, scales ones); learned
 * inner rates (`lr.*`, `lslr.*`) the spec's innerLr.
 */
export function initParams(spec: RunSpec): FlatTensors {
  const layout = paramLayout(spec);
  const graph = modelGraph(spec);
  const data = new Float32Array(layoutSize(layout));
  const rng = new Rng(taskSeed(spec.seed, 'init', 0, 0));
  let off = 0;
  layout.forEach((t, i) => {
    const n = layoutSize([t]);
    if (i < graph.layout.length) drawInitializer(graph.inits[i]!, t.shape, rng, data.subarray(off, off + n));
    else data.fill(spec.algorithm.innerLr, off, off + n);
    off += n;
  });
  return { layout, data };
}

/**
 * The one entry point from a run spec to its model graph: the preset's or the declared layer list,
 * compiled against the task's input shape and output count (./graph.ts), cached per spec. The
 * spec's validation reports `modelIssues`; everything after validation uses `modelGraph`.
 */
import type { z } from 'zod';
import { SpecError, type SpecIssue } from '../errors.js';
import { buildGraph, type GraphProblem, type LayerSpec, type ModelGraph } from './graph.js';
import { conv4Issues, conv4Layers } from './presets/conv4.js';
import { mlpLayers } from './presets/mlp.js';
import { resnet12Issues, resnet12Layers } from './presets/resnet12.js';
import type { PresetDims } from './presets/types.js';
import type { ModelSchema } from './schema.js';

export type ModelSpec = z.output<typeof ModelSchema>;
export type { PresetDims };

/** The layer list of a model spec (a preset's, or the declared one). */
export function modelLayers(model: ModelSpec, dims: PresetDims): LayerSpec[] {
  switch (model.kind) {
    case 'mlp':
      return mlpLayers(model, dims);
    case 'conv4':
      return conv4Layers(model, dims);
    case 'resnet12':
      return resnet12Layers(model, dims);
    case 'layers':
      return model.layers;
  }
}

function presetIssues(model: ModelSpec, dims: PresetDims): SpecIssue[] {
  if (model.kind === 'conv4') return conv4Issues(model, dims);
  if (model.kind === 'resnet12') return resnet12Issues(model, dims);
  return [];
}

/** The input shape the graph sees: the declared one (same number of values as the task's) or the task's. */
function inputShape(model: ModelSpec, dims: PresetDims): readonly number[] {
  return model.kind === 'layers' && model.input ? model.input : dims.inputShape;
}

const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Smallest square image (up to 1024) the preset fits, by shape inference; undefined when none does. */
function smallestImage(model: ModelSpec, dims: PresetDims): number | undefined {
  const channels = dims.image!.channels;
  for (let s = 1; s <= 1024; s++) {
    const d = { ...dims, inputShape: [s, s, channels], image: { size: s, channels } };
    if (buildGraph(modelLayers(model, d), d.inputShape, d.outputs).graph) return s;
  }
  return undefined;
}

function problemIssues(model: ModelSpec, dims: PresetDims, problems: readonly GraphProblem[]): SpecIssue[] {
  if (problems.length === 0) return [];
  if (model.kind === 'layers') {
    return problems.map((p) => ({ path: ['model', 'layers', ...(p.index >= 0 ? [String(p.index)] : []), ...(p.option ? [p.option] : [])].join('.'), message: p.message }));
  }
  const detail = problems.map((p) => p.message).join('; ');
  const min = dims.image ? smallestImage(model, dims) : undefined;
  if (dims.image && min !== undefined && min > dims.image.size) {
    return [{ path: 'task.imageSize', message: `${model.kind} needs images of at least ${min} pixels, got ${dims.image.size} (${detail})` }];
  }
  return [{ path: 'model', message: `${model.kind} does not fit this task: ${detail}` }];
}

/** Every problem of the model against the task (empty when it compiles). */
export function modelIssues(model: ModelSpec, dims: PresetDims): SpecIssue[] {
  const preset = presetIssues(model, dims);
  if (preset.length > 0) return preset;
  const input = inputShape(model, dims);
  if (count(input) !== count(dims.inputShape)) {
    return [{ path: 'model.input', message: `[${input.join(', ')}] holds ${count(input)} values per example, the task's inputs [${dims.inputShape.join(', ')}] ${count(dims.inputShape)}: give a shape of the same size (or leave input out)` }];
  }
  const { problems } = buildGraph(modelLayers(model, dims), input, dims.outputs);
  return problemIssues(model, dims, problems);
}

const cache = new WeakMap<object, Map<string, ModelGraph>>();

/** The compiled graph of a validated model spec (cached per model object and task dims); throws SpecError when it does not compile. */
export function compileModel(model: ModelSpec, dims: PresetDims): ModelGraph {
  const key = JSON.stringify([dims.inputShape, dims.outputs]);
  let byDims = cache.get(model);
  const hit = byDims?.get(key);
  if (hit) return hit;
  const issues = modelIssues(model, dims);
  if (issues.length > 0) throw new SpecError(issues);
  const { graph } = buildGraph(modelLayers(model, dims), inputShape(model, dims), dims.outputs);
  if (!byDims) cache.set(model, (byDims = new Map<string, ModelGraph>()));
  byDims.set(key, graph!);
  return graph!;
}

/**
 * `metaloop export`'s Keras and TF.js files: θ of a run as its layer graph (every model compiles to
 * one, presets too) written as a Keras 3 `model.keras` and a TF.js Layers `tfjs-layers/model.json`,
 * batch norm's moving statistics given (the worker estimates them: bn-statistics.ts). Layer
 * options are written explicitly from the compiled graph (defaults applied); initialisers are left
 * to Keras' defaults (the weights are set).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODEL_INPUT, modelGraph, sizeOf, type GraphNode, type RunSpec } from '@metaloop/shared';
import { EXPORT_INPUT, type ExportLayer, type ExportModel, type ExportVariable } from './export-model.js';
import { EXTRA_VARIABLES } from './from-keras.js';
import { kerasFile } from './to-keras.js';
import { tfjsModel, TFJS_WEIGHTS_FILE } from './to-tfjs.js';

export const KERAS_FILE = 'model.keras';
export const TFJS_DIR = 'tfjs-layers';

/** Moving statistics by BatchNormalization layer name. */
export type MovingStatistics = ReadonlyMap<string, { readonly mean: Float32Array; readonly variance: Float32Array }>;

/** Options Metaloop accepts that Keras 3 does without (deprecated or unused at inference). */
const NOT_EXPORTED = new Set(['momentum', 'input_length']);

/** A node's Keras options, explicit: its parsed config without initialisers, nulls and unused options. */
export function exportOptions(node: GraphNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node.config)) {
    if (v === undefined || v === null || k.endsWith('_initializer') || NOT_EXPORTED.has(k)) continue;
    out[k] = v;
  }
  if (node.type === 'Dense') out['units'] = node.shape.at(-1);
  if (node.type === 'LeakyReLU') {
    out['negative_slope'] = node.config['negative_slope'] ?? node.config['alpha'] ?? 0.3;
    delete out['alpha'];
  }
  return out;
}

/** The graph of `spec` with θ (and the moving statistics) as the writers take it. */
export function exportModel(spec: RunSpec, params: Float32Array, stats: MovingStatistics): ExportModel {
  const graph = modelGraph(spec);
  const offsets = new Map<string, number>();
  let off = 0;
  for (const t of graph.layout) {
    offsets.set(t.name, off);
    off += sizeOf(t.shape);
  }
  const layers: ExportLayer[] = graph.nodes.map((node) => {
    const variables: ExportVariable[] = node.params.map((p) => {
      const at = offsets.get(p.name)!;
      return { keras: p.keras, shape: [...p.shape], data: params.slice(at, at + sizeOf(p.shape)) };
    });
    for (const extra of EXTRA_VARIABLES[node.type] ?? []) {
      const s = stats.get(node.name);
      if (!s) throw new RangeError(`no moving statistics for ${node.name} (${node.type})`);
      variables.push({ keras: extra, shape: [s.mean.length], data: extra === 'moving_mean' ? s.mean : s.variance });
    }
    return {
      type: node.type,
      name: node.name,
      inputs: node.inputs.map((i) => (i === MODEL_INPUT ? EXPORT_INPUT : i)),
      options: exportOptions(node),
      inputShapes: node.inputShapes,
      shape: node.shape,
      variables,
    };
  });
  return { name: spec.name.replace(/-/g, '_'), input: graph.input, layers };
}

/** Write DIR/model.keras and DIR/tfjs-layers/{model.json, group1-shard1of1.bin}; returns the paths. */
export async function saveKerasExports(dir: string, spec: RunSpec, params: Float32Array, stats: MovingStatistics, generatedBy: string): Promise<string[]> {
  const model = exportModel(spec, params, stats);
  const keras = join(dir, KERAS_FILE);
  const tfjsDir = join(dir, TFJS_DIR);
  await mkdir(tfjsDir, { recursive: true });
  await writeFile(keras, await kerasFile(model, generatedBy));
  const t = tfjsModel(model, generatedBy);
  const json = join(tfjsDir, 'model.json');
  const bin = join(tfjsDir, TFJS_WEIGHTS_FILE);
  await writeFile(json, JSON.stringify(t.modelJson, null, 1) + '\n');
  await writeFile(bin, t.weights);
  return [keras, json, bin];
}

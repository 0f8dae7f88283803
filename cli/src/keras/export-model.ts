/**
 * The model as the Keras and TF.js writers take it (to-keras.ts, to-tfjs.ts): layers with their
 * Keras class, name, inputs, explicit Keras options, shapes and variables in Keras' order, and
 * Keras' own order of a Functional model's layers (which fixes where model.weights.h5 keeps each
 * layer's variables when Keras loads the file).
 */

/** One Keras variable to write. */
export interface ExportVariable {
  readonly keras: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface ExportLayer {
  readonly type: string;
  readonly name: string;
  /** Layer names it reads; EXPORT_INPUT for the model input. */
  readonly inputs: readonly string[];
  /** Keras config options (snake_case), explicit: whatever Metaloop computes with. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly inputShapes: readonly (readonly number[])[];
  /** Output shape of one example. */
  readonly shape: readonly number[];
  readonly variables: readonly ExportVariable[];
}

export interface ExportModel {
  readonly name: string;
  /** Shape of one input example. */
  readonly input: readonly number[];
  /** Every layer, each after the layers it reads; the last is the output. */
  readonly layers: readonly ExportLayer[];
}

/** How the layers name the model input. */
export const EXPORT_INPUT = 'input';

/** The input layer's name in the written model: `input_layer` (Keras 3's), unless a layer has it. */
export function inputLayerName(m: ExportModel): string {
  const taken = new Set(m.layers.map((l) => l.name));
  let name = 'input_layer';
  for (let i = 1; taken.has(name); i++) name = `input_layer_${i}`;
  return name;
}

/**
 * The order of a Functional model's `layers` as Keras 3 computes it from the graph
 * (keras.src.ops.function.map_graph): by decreasing depth (the longest path to the output), ties
 * by first visit in a depth-first walk from the output through each layer's inputs in order. The
 * input layer (EXPORT_INPUT) comes first. Keras' config.json and model.weights.h5 list layers in
 * this order, and Keras finds a layer's variables by its place in it.
 */
export function kerasLayerOrder(m: ExportModel): string[] {
  const byName = new Map(m.layers.map((l) => [l.name, l]));
  const output = m.layers[m.layers.length - 1]!.name;
  const index = new Map<string, number>();
  const visit = (name: string) => {
    if (index.has(name)) return;
    index.set(name, index.size);
    for (const i of byName.get(name)?.inputs ?? []) visit(i);
  };
  visit(output);
  const depth = new Map<string, number>([[output, 0]]);
  // Layers are listed after their inputs: walking backwards settles each depth before its inputs'.
  for (let k = m.layers.length - 1; k >= 0; k--) {
    const l = m.layers[k]!;
    const d = depth.get(l.name);
    if (d === undefined) continue;
    for (const i of l.inputs) depth.set(i, Math.max(depth.get(i) ?? 0, d + 1));
  }
  return [...depth.keys()].sort((a, b) => depth.get(b)! - depth.get(a)! || index.get(a)! - index.get(b)!);
}

/**
 * What the Keras conversion needs of @metaloop/shared's layer graph: the layer types it has, and
 * the compiled graph's nodes with their parameters (wire name, shape, Keras variable name).
 */
import { type RunSpec } from '@metaloop/shared';
import type { WeightedNode } from './from-keras.js';

/** The layer types (Keras class names) the graph has. */
export function layerTypes(): readonly string[] {
  return [];
}

/** The nodes of the validated spec's model graph, in layer order. */
export function graphNodes(_spec: RunSpec): readonly WeightedNode[] {
  return [];
}

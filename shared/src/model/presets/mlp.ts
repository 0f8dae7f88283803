/**
 * The MLP preset: [Flatten when the input is not a vector] → Dense l0 … l(n−1) with the hidden
 * widths and the activation → Dense l(n) (the task's outputs, linear). Tensor names `l<i>.w`,
 * `l<i>.b`, as they have always been. MLP-shaped runs take the worker's fused host path unless
 * `fused: false` (docs/compute.md).
 */
import { z } from 'zod';
import type { LayerSpec } from '../graph.js';
import type { PresetDims } from './types.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

export const MlpModelSchema = z.strictObject({
  kind: z.literal('mlp'),
  hidden: z.array(int(1, 65_536)).max(64).default([40, 40]),
  activation: z.enum(['relu', 'tanh']).default('relu'),
  /** false: compute on tfjs (the run's backend) instead of the fused float64 host path. */
  fused: z.boolean().optional(),
});
export type MlpModel = z.output<typeof MlpModelSchema>;

export function mlpLayers(model: MlpModel, dims: PresetDims): LayerSpec[] {
  const layers: LayerSpec[] = dims.inputShape.length > 1 ? [{ type: 'Flatten', name: 'flatten' }] : [];
  model.hidden.forEach((units, i) => layers.push({ type: 'Dense', name: `l${i}`, units, activation: model.activation }));
  layers.push({ type: 'Dense', name: `l${model.hidden.length}`, units: dims.outputs });
  return layers;
}

/**
 * `model:` in the run spec: a preset (`mlp`, `conv4`, `resnet12`, each compiled to a layer graph by
 * its file in ./presets) or `kind: layers`, a graph declared layer by layer (docs/models.md). The
 * layers' own options are checked by their layer files when the graph is compiled (./graph.ts), so
 * a problem names the layer, what it got and what fits.
 */
import { z } from 'zod';
import { Conv4ModelSchema } from './presets/conv4.js';
import { MlpModelSchema } from './presets/mlp.js';
import { Resnet12ModelSchema } from './presets/resnet12.js';

export const LayerSpecSchema = z.looseObject({
  type: z.string().min(1),
  name: z.string().optional(),
  inputs: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
});

export const LayersModelSchema = z.strictObject({
  kind: z.literal('layers'),
  /** Shape of one input example; default the task family's (same number of values, reshaped). */
  input: z.array(z.number().int().min(1).max(1 << 24)).min(1).max(8).optional(),
  layers: z.array(LayerSpecSchema).min(1).max(4096),
  /** false: an MLP-shaped graph computes on tfjs instead of the fused float64 host path. */
  fused: z.boolean().optional(),
  /**
   * θ₀ uploaded to the coordinator (`init: weights` of a Keras file, which the CLI converts): the
   * sha256 of its TensorBundle (coordinator/src/uploads.ts, init-weights.ts). Absent: θ₀ from the
   * layers' initialisers.
   */
  weights: z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the sha256 of the uploaded weights: 64 lowercase hex digits') }).optional(),
});

export const ModelSchema = z.discriminatedUnion('kind', [MlpModelSchema, Conv4ModelSchema, Resnet12ModelSchema, LayersModelSchema]);

export { Conv4ModelSchema, MlpModelSchema, Resnet12ModelSchema };

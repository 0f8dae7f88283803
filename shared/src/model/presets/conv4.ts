/**
 * The Conv4 of MAML / learn2learn / MAML++: 4 × [3×3 conv ('same'), batch norm (ε 1e-5, learned
 * scale and offset), ReLU, 2×2 max-pool ('valid')] — or, with `pool: stride`, a stride-2 conv
 * instead of the pool — then Flatten and a Dense head. Names `conv<i>`, `bn<i>`, `head`, as they
 * have always been. The smallest image that fits is what shape inference says (16 with max-pool).
 */
import { z } from 'zod';
import type { LayerSpec } from '../graph.js';
import type { PresetDims, PresetIssues } from './types.js';

export const Conv4ModelSchema = z.strictObject({
  kind: z.literal('conv4'),
  filters: z.number().int().min(1).max(4096).default(64),
  pool: z.enum(['max', 'stride']).default('max'),
  imageSize: z.number().int().min(4).max(512).optional(),
  channels: z.number().int().min(1).max(64).optional(),
});
export type Conv4Model = z.output<typeof Conv4ModelSchema>;

/** Batch-norm epsilon of the preset (PyTorch's default, which the MAML implementations use). */
export const CONV4_BN_EPSILON = 1e-5;

/** Problems of the preset itself: image size and channels, when given, must be the task's. */
export function conv4Issues(model: Conv4Model, dims: PresetDims): PresetIssues {
  if (!dims.image) return [{ path: 'model.kind', message: `conv4 needs an image task family (synthetic-glyphs or fewshot-images), got ${dims.family}; use mlp for it` }];
  const issues: PresetIssues = [];
  if (model.imageSize !== undefined && model.imageSize !== dims.image.size) {
    issues.push({ path: 'model.imageSize', message: `model.imageSize (${model.imageSize}) must equal task.imageSize (${dims.image.size}); or leave it out` });
  }
  if (model.channels !== undefined && model.channels !== dims.image.channels) {
    issues.push({ path: 'model.channels', message: `model.channels (${model.channels}) must equal the task's channels (${dims.image.channels}); or leave it out` });
  }
  return issues;
}

export function conv4Layers(model: Conv4Model, dims: PresetDims): LayerSpec[] {
  const stride = model.pool === 'stride' ? 2 : 1;
  const layers: LayerSpec[] = [];
  for (let i = 0; i < 4; i++) {
    layers.push({ type: 'Conv2D', name: `conv${i}`, filters: model.filters, kernel_size: 3, strides: stride, padding: 'same' });
    layers.push({ type: 'BatchNormalization', name: `bn${i}`, epsilon: CONV4_BN_EPSILON });
    layers.push({ type: 'Activation', name: `relu${i}`, activation: 'relu' });
    if (model.pool === 'max') layers.push({ type: 'MaxPooling2D', name: `pool${i}`, pool_size: 2, strides: 2, padding: 'valid' });
  }
  layers.push({ type: 'Flatten', name: 'flatten' }, { type: 'Dense', name: 'head', units: dims.outputs });
  return layers;
}

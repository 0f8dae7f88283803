/**
 * ResNet-12 of MetaOptNet (Lee et al. 2019) as learn2learn builds it: 4 residual blocks, block b
 * with `channels[b]` filters:
 *   x → 3 × [3×3 conv (no bias, 'same'), batch norm] with a leaky ReLU (slope 0.1) after the first
 *   two; shortcut: 1×1 conv (no bias) + batch norm of x; add; leaky ReLU 0.1; 2×2 max-pool.
 * Then global average pooling (learn2learn's default; `pooling: flatten` flattens instead, as
 * MetaOptNet) and a Dense head. No DropBlock, no dropout. Convolutions start from Kaiming normal
 * with fan_out (VarianceScaling(2, fan_out, untruncated_normal), learn2learn's init), batch norm
 * at scale 1, offset 0, ε 1e-5 (PyTorch's). Channels default 64-160-320-640; images of at least
 * 16 pixels (four 2×2 pools).
 * Names: `block<b>_conv<j>`, `block<b>_bn<j>` (j = 1..3), `block<b>_shortcut_conv`,
 * `block<b>_shortcut_bn`, …, `head`.
 */
import { z } from 'zod';
import type { LayerSpec } from '../graph.js';
import type { PresetDims, PresetIssues } from './types.js';

const channel = z.number().int().min(1).max(4096);

export const Resnet12ModelSchema = z.strictObject({
  kind: z.literal('resnet12'),
  channels: z.tuple([channel, channel, channel, channel]).default([64, 160, 320, 640]),
  pooling: z.enum(['average', 'flatten']).default('average'),
});
export type Resnet12Model = z.output<typeof Resnet12ModelSchema>;

const KAIMING_FAN_OUT = { class_name: 'VarianceScaling', config: { scale: 2, mode: 'fan_out', distribution: 'untruncated_normal' } };
const SLOPE = 0.1;
const EPSILON = 1e-5;

export function resnet12Issues(_model: Resnet12Model, dims: PresetDims): PresetIssues {
  return dims.image ? [] : [{ path: 'model.kind', message: `resnet12 needs an image task family (synthetic-glyphs or fewshot-images), got ${dims.family}` }];
}

export function resnet12Layers(model: Resnet12Model, dims: PresetDims): LayerSpec[] {
  const layers: LayerSpec[] = [];
  let prev = 'input';
  model.channels.forEach((filters, b) => {
    const p = `block${b}`;
    const conv = (name: string, kernel: number, inputs?: string[]): LayerSpec => ({
      type: 'Conv2D',
      name,
      filters,
      kernel_size: kernel,
      padding: 'same',
      use_bias: false,
      kernel_initializer: KAIMING_FAN_OUT,
      ...(inputs ? { inputs } : {}),
    });
    const bn = (name: string): LayerSpec => ({ type: 'BatchNormalization', name, epsilon: EPSILON });
    const act = (name: string): LayerSpec => ({ type: 'LeakyReLU', name, negative_slope: SLOPE });
    layers.push(conv(`${p}_conv1`, 3, [prev]), bn(`${p}_bn1`), act(`${p}_act1`));
    layers.push(conv(`${p}_conv2`, 3), bn(`${p}_bn2`), act(`${p}_act2`));
    layers.push(conv(`${p}_conv3`, 3), bn(`${p}_bn3`));
    layers.push(conv(`${p}_shortcut_conv`, 1, [prev]), bn(`${p}_shortcut_bn`));
    layers.push({ type: 'Add', name: `${p}_add`, inputs: [`${p}_bn3`, `${p}_shortcut_bn`] });
    layers.push(act(`${p}_act`), { type: 'MaxPooling2D', name: `${p}_pool`, pool_size: 2 });
    prev = `${p}_pool`;
  });
  layers.push(model.pooling === 'average' ? { type: 'GlobalAveragePooling2D', name: 'pool' } : { type: 'Flatten', name: 'flatten' });
  layers.push({ type: 'Dense', name: 'head', units: dims.outputs });
  return layers;
}

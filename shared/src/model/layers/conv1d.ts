/**
 * Conv1D on sequences [N, L, C]: kernel k, stride, padding `valid` | `same` | `causal` (k − 1 zeros
 * before the sequence, then valid). W [k, C, filters] (Keras' kernel layout), b [filters].
 * Per task: tf.conv1d (a Conv2D over [N, 1, L, C]). Task-batched: the shifted-slice products of
 * ../conv.ts over a height of 1.
 */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { ActivationSchema, applyActivation } from '../activations.js';
import { batchedConv2d, windowShape } from '../conv.js';
import { initializer, intTuple } from '../options.js';
import { defineLayer, type Tensor, type Tensor3D, type Tf } from '../types.js';

const schema = z.strictObject({
  filters: z.number().int().min(1).max(65_536),
  kernel_size: intTuple(1),
  strides: intTuple(1).prefault(1),
  padding: z.enum(['valid', 'same', 'causal']).default('valid'),
  activation: ActivationSchema,
  use_bias: z.boolean().default(true),
  kernel_initializer: initializer('glorot_uniform'),
  bias_initializer: initializer('zeros'),
  dilation_rate: z.union([z.literal(1), z.tuple([z.literal(1)])], { error: 'dilated convolution is not supported: use 1 (or leave dilation_rate out)' }).optional(),
  groups: z.literal(1, { error: 'grouped convolution is not supported: use 1 (or leave groups out)' }).optional(),
});
type Config = z.output<typeof schema>;

/** Causal: k − 1 zeros before the sequence (x [.., L, C]), then a valid convolution. */
function causal(tf: Tf, c: Config, x: Tensor): Tensor {
  const pad = x.shape.map((): [number, number] => [0, 0]);
  pad[x.rank - 2] = [c.kernel_size[0]! - 1, 0];
  return tf.pad(x, pad);
}

export const Conv1D = defineLayer<Config>({
  type: 'Conv1D',
  schema,
  shape: (c, [x]) => {
    if (x!.length !== 2) throw new ModelError(`needs sequences [L, C], got an input of shape [${x!.join(', ')}]: add a Reshape (or an Embedding) before it`);
    const L = c.padding === 'causal' ? x![0]! + c.kernel_size[0]! - 1 : x![0]!;
    const [ol] = windowShape([L], c.kernel_size, c.strides, c.padding === 'same' ? 'same' : 'valid', 'kernel', 'kernel_size');
    return [ol!, c.filters];
  },
  params: (c, [x]) => {
    const w = { param: 'w', shape: [c.kernel_size[0]!, x![1]!, c.filters], init: c.kernel_initializer, keras: 'kernel' };
    return c.use_bias ? [w, { param: 'b', shape: [c.filters], init: c.bias_initializer, keras: 'bias' }] : [w];
  },
  forward: (tf, c, [x], p) => {
    const input = c.padding === 'causal' ? causal(tf, c, x!) : x!;
    let y = tf.conv1d(input as Tensor3D, p.w as Tensor3D, c.strides[0]!, c.padding === 'same' ? 'same' : 'valid');
    if (p.b) y = tf.add(y, p.b);
    return applyActivation(tf, c.activation, y);
  },
  forwardBatched: (tf, c, [x], p) => {
    const input = c.padding === 'causal' ? causal(tf, c, x!) : x!;
    const [T, B, L, C] = input.shape as [number, number, number, number];
    const w = p.w!;
    const y4 = batchedConv2d(tf, tf.reshape(input, [T, B, 1, L, C]), tf.reshape(w, [T, 1, ...w.shape.slice(1)]), [1, c.strides[0]!], c.padding === 'same' ? 'same' : 'valid');
    let y = tf.reshape(y4, [T, B, y4.shape[3]!, c.filters]);
    if (p.b) y = tf.add(y, tf.reshape(p.b, [T, 1, 1, c.filters]));
    return applyActivation(tf, c.activation, y);
  },
});

/**
 * Conv2D on NHWC images: any kernel size and stride, padding `same` | `valid` (TensorFlow's
 * convention: `same` gives ⌈H/s⌉ with the odd padding pixel at the end). W [kh, kw, C, filters]
 * (Keras' kernel layout), b [filters]. No dilation, no groups.
 * Per task: tf.conv2d, whose gradients (Conv2DBackpropInput / Conv2DBackpropFilter) have the
 * worker's registered second-order gradients. Task-batched: shifted-slice products (../conv.ts).
 */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { ActivationSchema, applyActivation } from '../activations.js';
import { batchedConv2d, square, windowShape } from '../conv.js';
import { initializer, intTuple, PaddingSchema } from '../options.js';
import { defineLayer, type Tensor, type Tensor4D, type Tf } from '../types.js';

const schema = z.strictObject({
  filters: z.number().int().min(1).max(65_536),
  kernel_size: intTuple(2),
  strides: intTuple(2).prefault(1),
  padding: PaddingSchema.default('valid'),
  activation: ActivationSchema,
  use_bias: z.boolean().default(true),
  kernel_initializer: initializer('glorot_uniform'),
  bias_initializer: initializer('zeros'),
  dilation_rate: z.union([z.literal(1), z.tuple([z.literal(1), z.literal(1)])], { error: 'dilated convolution is not supported: use 1 (or leave dilation_rate out)' }).optional(),
  groups: z.literal(1, { error: 'grouped convolution is not supported: use 1 (or leave groups out)' }).optional(),
});
type Config = z.output<typeof schema>;

function finish(tf: Tf, c: Config, y: Tensor, b: Tensor | undefined, bias: (b: Tensor) => Tensor): Tensor {
  return applyActivation(tf, c.activation, b ? tf.add(y, bias(b)) : y);
}

export const Conv2D = defineLayer<Config>({
  type: 'Conv2D',
  schema,
  shape: (c, [x]) => {
    if (x!.length !== 3) throw new ModelError(`needs images [H, W, C], got an input of shape [${x!.join(', ')}]: add a Reshape before it`);
    const [oh, ow] = windowShape(x!.slice(0, 2), c.kernel_size, c.strides, c.padding, 'kernel', 'kernel_size');
    return [oh!, ow!, c.filters];
  },
  params: (c, [x]) => {
    const w = { param: 'w', shape: [...c.kernel_size, x![2]!, c.filters], init: c.kernel_initializer, keras: 'kernel' };
    return c.use_bias ? [w, { param: 'b', shape: [c.filters], init: c.bias_initializer, keras: 'bias' }] : [w];
  },
  forward: (tf, c, [x], p) => finish(tf, c, tf.conv2d(x as Tensor4D, p.w as Tensor4D, square(c.strides), c.padding), p.b, (b) => b),
  forwardBatched: (tf, c, [x], p) => {
    const y = batchedConv2d(tf, x!, p.w!, c.strides, c.padding);
    return finish(tf, c, y, p.b, (b) => tf.reshape(b, [b.shape[0], 1, 1, 1, c.filters]));
  },
});

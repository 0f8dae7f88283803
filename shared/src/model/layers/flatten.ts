/** Flatten: each example to a vector, row-major ([H, W, C] → [H·W·C], NHWC order as Keras channels_last). */
import { z } from 'zod';
import { defineLayer } from '../types.js';

const schema = z.strictObject({});

export const Flatten = defineLayer<z.output<typeof schema>>({
  type: 'Flatten',
  schema,
  shape: (_c, [x]) => [x!.reduce((a, b) => a * b, 1)],
  forward: (tf, _c, [x]) => tf.reshape(x!, [x!.shape[0], -1]),
  forwardBatched: (tf, _c, [x]) => tf.reshape(x!, [x!.shape[0], x!.shape[1]!, -1]),
});

/**
 * ReLU (the Keras layer): max(x, 0); with `negative_slope` s > 0, s·x below zero (leaky); with
 * `max_value` m, capped at m. `threshold` must be 0.
 */
import { z } from 'zod';
import { defineLayer } from '../types.js';

const schema = z.strictObject({
  max_value: z.union([z.number().positive().finite(), z.null()]).default(null),
  negative_slope: z.number().min(0).max(1).default(0),
  threshold: z.literal(0).default(0),
});

export const ReLU = defineLayer<z.output<typeof schema>>({
  type: 'ReLU',
  schema,
  shape: (_c, [x]) => x!,
  forward: (tf, c, [x]) => {
    const y = c.negative_slope > 0 ? tf.leakyRelu(x!, c.negative_slope) : tf.relu(x!);
    return c.max_value === null ? y : tf.minimum(y, c.max_value);
  },
  forwardBatched: 'fold',
});

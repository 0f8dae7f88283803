/** ELU: x above zero, alpha·(eˣ − 1) below (default alpha 1: tf.elu, whose gradients the worker registers twice differentiable). */
import { z } from 'zod';
import { defineLayer } from '../types.js';

const schema = z.strictObject({ alpha: z.number().positive().finite().default(1) });

export const ELU = defineLayer<z.output<typeof schema>>({
  type: 'ELU',
  schema,
  shape: (_c, [x]) => x!,
  // alpha·(eˣ − 1) below zero = relu(x) + alpha·min(elu(x), 0).
  forward: (tf, c, [x]) => (c.alpha === 1 ? tf.elu(x!) : tf.add(tf.relu(x!), tf.mul(tf.minimum(tf.elu(x!), 0), c.alpha))),
  forwardBatched: 'fold',
});

/** Reshape each example to `target_shape` (one entry may be -1: inferred), row-major. */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { defineLayer } from '../types.js';

const schema = z.strictObject({ target_shape: z.array(z.union([z.number().int().min(1), z.literal(-1)])).min(1).max(8) });
type Config = z.output<typeof schema>;

export const Reshape = defineLayer<Config>({
  type: 'Reshape',
  schema,
  shape: (c, [x]) => {
    const n = x!.reduce((a, b) => a * b, 1);
    const free = c.target_shape.filter((d) => d === -1).length;
    const known = c.target_shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    if (free > 1) throw new ModelError('at most one entry of target_shape may be -1', 'target_shape');
    if (free === 0 ? known !== n : n % known !== 0) {
      throw new ModelError(`cannot reshape [${x!.join(', ')}] (${n} values) to [${c.target_shape.join(', ')}]: the sizes must multiply to ${n}`, 'target_shape');
    }
    return c.target_shape.map((d) => (d === -1 ? n / known : d));
  },
  forward: (tf, c, [x]) => tf.reshape(x!, [x!.shape[0], ...c.target_shape]),
  forwardBatched: (tf, c, [x]) => tf.reshape(x!, [x!.shape[0], x!.shape[1]!, ...c.target_shape]),
});

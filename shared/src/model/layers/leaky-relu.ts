/** LeakyReLU: x above zero, negative_slope·x below (Keras 3 `negative_slope`, Keras 2 / TF.js `alpha`; default 0.3). */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { defineLayer } from '../types.js';

const schema = z.strictObject({
  negative_slope: z.number().min(0).max(1).optional(),
  alpha: z.number().min(0).max(1).optional(),
});
type Config = z.output<typeof schema>;

const slope = (c: Config) => c.negative_slope ?? c.alpha ?? 0.3;

export const LeakyReLU = defineLayer<Config>({
  type: 'LeakyReLU',
  schema,
  shape: (c, [x]) => {
    if (c.negative_slope !== undefined && c.alpha !== undefined && c.negative_slope !== c.alpha) throw new ModelError('give negative_slope or alpha (the same thing), not both', 'alpha');
    return x!;
  },
  forward: (tf, c, [x]) => tf.leakyRelu(x!, slope(c)),
  forwardBatched: 'fold',
});

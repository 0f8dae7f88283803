/**
 * Dropout is accepted and is the identity: the inner loop must be deterministic (the same θ and
 * task give the same meta-gradient on every worker), so no units are dropped, in training or not.
 */
import { z } from 'zod';
import { defineLayer } from '../types.js';

const schema = z.strictObject({
  rate: z.number().min(0).lt(1).default(0),
  noise_shape: z.null().optional(),
  seed: z.union([z.number(), z.null()]).optional(),
});

export const Dropout = defineLayer<z.output<typeof schema>>({
  type: 'Dropout',
  schema,
  shape: (_c, [x]) => x!,
  forward: (_tf, _c, [x]) => x!,
  forwardBatched: (_tf, _c, [x]) => x!,
});

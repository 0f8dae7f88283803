/**
 * LayerNormalization over the last axis of each example: (x − mean) / sqrt(var + ε) · γ + β, with
 * the example's own statistics (so it is the same in training and inference). epsilon: Keras'
 * default 1e-3. Task-batched: γ, β [T, C] broadcast over each task's rows.
 */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { initializer, positive } from '../options.js';
import { defineLayer } from '../types.js';
import { normalize, perTask, scaleOffset } from './batch-normalization.js';

const schema = z.strictObject({
  axis: z.union([z.literal(-1), z.number().int().min(1), z.tuple([z.number().int()])], { error: 'expected -1 (the last axis), the index of the last axis, or a list of it' }).default(-1),
  epsilon: positive().default(1e-3),
  center: z.boolean().default(true),
  scale: z.boolean().default(true),
  rms_scaling: z.literal(false).optional(),
  beta_initializer: initializer('zeros'),
  gamma_initializer: initializer('ones'),
});
type Config = z.output<typeof schema>;

const axisOf = (c: Config): number => (typeof c.axis === 'number' ? c.axis : c.axis[0]);

export const LayerNormalization = defineLayer<Config>({
  type: 'LayerNormalization',
  schema,
  shape: (c, [x]) => {
    const a = axisOf(c);
    if (a !== -1 && a !== x!.length) throw new ModelError(`normalises the last axis only: use axis -1 (or ${x!.length}), got ${JSON.stringify(c.axis)}`, 'axis');
    return x!;
  },
  params: (c, [x]) => scaleOffset(c, x!.at(-1)!),
  forward: (tf, c, [x], p) => normalize(tf, x!, [x!.rank - 1], c.epsilon, p.scale, p.offset),
  forwardBatched: (tf, c, [x], p) => normalize(tf, x!, [x!.rank - 1], c.epsilon, perTask(tf, p.scale, x!.rank), perTask(tf, p.offset, x!.rank)),
});

/** ZeroPadding2D: zeros around each image; padding n, [rows, cols] or [[top, bottom], [left, right]]. Task-batched: tasks folded into the batch. */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { defineLayer } from '../types.js';

const n = z.number().int().min(0).max(4096);
const schema = z.strictObject({
  padding: z
    .union([n, z.tuple([n, n]), z.tuple([z.tuple([n, n]), z.tuple([n, n])])])
    .default(1)
    .transform((p): [[number, number], [number, number]] => {
      if (typeof p === 'number') return [[p, p], [p, p]];
      if (typeof p[0] === 'number') return [[p[0], p[0]], [p[1] as number, p[1] as number]];
      return p as [[number, number], [number, number]];
    }),
});
type Config = z.output<typeof schema>;

export const ZeroPadding2D = defineLayer<Config>({
  type: 'ZeroPadding2D',
  schema,
  shape: (c, [x]) => {
    if (x!.length !== 3) throw new ModelError(`needs images [H, W, C], got an input of shape [${x!.join(', ')}]`);
    const [[t, b], [l, r]] = c.padding;
    return [x![0]! + t + b, x![1]! + l + r, ...x!.slice(2)];
  },
  forward: (tf, c, [x]) => tf.pad(x!, [[0, 0], ...c.padding, [0, 0]]),
  forwardBatched: 'fold',
});

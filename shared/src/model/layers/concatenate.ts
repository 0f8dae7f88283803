/** Concatenate: two or more inputs joined along `axis` (Keras counts the batch axis: -1, the channels, by default); other dims must match. */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { defineLayer } from '../types.js';

const schema = z.strictObject({ axis: z.number().int().default(-1) });
type Config = z.output<typeof schema>;

/** The axis within one example (0-based, no batch axis), or -1 when out of range. */
function exampleAxis(axis: number, rank: number): number {
  const a = axis < 0 ? rank + axis : axis - 1;
  return a >= 0 && a < rank ? a : -1;
}

export const Concatenate = defineLayer<Config>({
  type: 'Concatenate',
  schema,
  inputs: 'many',
  shape: (c, xs) => {
    const first = xs[0]!;
    const a = exampleAxis(c.axis, first.length);
    if (a < 0) throw new ModelError(`axis ${c.axis} is outside inputs of shape [${first.join(', ')}] (use -1..-${first.length} or 1..${first.length})`, 'axis');
    let total = 0;
    xs.forEach((s, k) => {
      const same = s.length === first.length && s.every((d, i) => i === a || d === first[i]);
      if (!same) throw new ModelError(`joins [${first.join(', ')}] and [${s.join(', ')}] (input ${k}): all dims but axis ${c.axis} must be equal`, 'inputs');
      total += s[a]!;
    });
    return first.map((d, i) => (i === a ? total : d));
  },
  forward: (tf, c, xs) => tf.concat([...xs], exampleAxis(c.axis, xs[0]!.rank - 1) + 1),
  forwardBatched: (tf, c, xs) => tf.concat([...xs], exampleAxis(c.axis, xs[0]!.rank - 2) + 2),
});

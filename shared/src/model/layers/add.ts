/** Add: the elementwise sum of two or more inputs of equal shape (a residual join). */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { defineLayer } from '../types.js';

const schema = z.strictObject({});

export const Add = defineLayer<z.output<typeof schema>>({
  type: 'Add',
  schema,
  inputs: 'many',
  shape: (_c, xs) => {
    const first = xs[0]!;
    const other = xs.findIndex((s) => s.length !== first.length || s.some((d, i) => d !== first[i]));
    if (other > 0) throw new ModelError(`joins inputs of unequal shapes: [${first.join(', ')}] and [${xs[other]!.join(', ')}] (input ${other}); Add needs equal shapes`, 'inputs');
    return first;
  },
  forward: (tf, _c, xs) => xs.slice(1).reduce((a, b) => tf.add(a, b), xs[0]!),
  forwardBatched: 'fold',
});

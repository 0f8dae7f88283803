/**
 * Embedding: token ids [N, ...] (integers, possibly held in float32) → vectors [N, ..., output_dim],
 * a row lookup in E [input_dim, output_dim]. Ids must lie in [0, input_dim). The default
 * initialiser is Keras': uniform in ±0.05. No mask_zero.
 * Task-batched: E [T, V, D] flattened to [T·V, D] and each task's ids offset by t·V, one gather.
 * gather's gradient is an UnsortedSegmentSum, whose gradient is a gather again: twice differentiable.
 */
import { z } from 'zod';
import { initializer } from '../options.js';
import { defineLayer, type Tensor } from '../types.js';

const schema = z.strictObject({
  input_dim: z.number().int().min(1).max(1 << 24),
  output_dim: z.number().int().min(1).max(1 << 16),
  embeddings_initializer: initializer('uniform'),
  mask_zero: z.literal(false).optional(),
  // Keras 3 writes it (null: not quantized).
  quantization_config: z.null().optional(),
  input_length: z.union([z.number().int(), z.null()]).optional(),
});
type Config = z.output<typeof schema>;

export const Embedding = defineLayer<Config>({
  type: 'Embedding',
  schema,
  shape: (c, [x]) => [...x!, c.output_dim],
  params: (c) => [{ param: 'embeddings', shape: [c.input_dim, c.output_dim], init: c.embeddings_initializer, keras: 'embeddings' }],
  forward: (tf, _c, [x], p) => tf.gather(p.embeddings!, tf.cast(x!, 'int32')),
  forwardBatched: (tf, c, [x], p) => {
    const E = p.embeddings!;
    const T = E.shape[0];
    const offsets: Tensor = tf.reshape(tf.range(0, T * c.input_dim, c.input_dim, 'int32'), [T, ...new Array<number>(x!.rank - 1).fill(1)]);
    return tf.gather(tf.reshape(E, [T * c.input_dim, c.output_dim]), tf.add(tf.cast(x!, 'int32'), offsets));
  },
});

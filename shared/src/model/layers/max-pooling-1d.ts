/** MaxPooling1D on sequences [N, L, C]: a 1×p MaxPool over [N, 1, L, C]. Task-batched: tasks folded into the batch. */
import { defineLayer, type R4 } from '../types.js';
import { poolSchema, poolShape, type PoolConfig } from './pooling.js';

export const MaxPooling1D = defineLayer<PoolConfig>({
  type: 'MaxPooling1D',
  schema: poolSchema(1),
  shape: (c, [x]) => poolShape(c, x!, 1),
  forward: (tf, c, [x]) => {
    const [N, L, C] = x!.shape as [number, number, number];
    const y = tf.maxPool(tf.reshape<R4>(x!, [N, 1, L, C]), [1, c.pool_size[0]!], [1, c.strides[0]!], c.padding);
    return tf.reshape(y, [N, y.shape[2], C]);
  },
  forwardBatched: 'fold',
});

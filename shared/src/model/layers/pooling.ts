/** Options and shape rule the pooling layers share (Keras: pool_size, strides default pool_size, padding). */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { square, windowShape } from '../conv.js';
import { intTuple, PaddingSchema } from '../options.js';
import { defineLayer, type AnyLayerDef, type Shape, type Tensor4D } from '../types.js';

export function poolSchema(n: 1 | 2) {
  return z
    .strictObject({
      pool_size: intTuple(n).prefault(2),
      strides: z.union([intTuple(n), z.null()], { error: `expected null (the pool size), a whole number >= 1 or a list of ${n}` }).default(null),
      padding: PaddingSchema.default('valid'),
    })
    .transform((c) => ({ ...c, strides: c.strides ?? c.pool_size }));
}
export type PoolConfig = z.output<ReturnType<typeof poolSchema>>;

/** [..spatial, C] → pooled spatial dims, C; `rank` spatial dims expected. */
export function poolShape(c: PoolConfig, x: Shape, spatial: 1 | 2): Shape {
  if (x.length !== spatial + 1) {
    throw new ModelError(`needs ${spatial === 2 ? 'images [H, W, C]' : 'sequences [L, C]'}, got an input of shape [${x.join(', ')}]`);
  }
  return [...windowShape(x.slice(0, spatial), c.pool_size, c.strides, c.padding, 'pool', 'pool_size'), x[spatial]!];
}

/** Global pooling: [..spatial, C] → [C] (keepdims: [1, .., 1, C]). */
export const globalSchema = z.strictObject({ keepdims: z.boolean().default(false) });
export type GlobalConfig = z.output<typeof globalSchema>;

export function globalShape(c: GlobalConfig, x: Shape, spatial: 1 | 2): Shape {
  if (x.length !== spatial + 1) {
    throw new ModelError(`needs ${spatial === 2 ? 'images [H, W, C]' : 'sequences [L, C]'}, got an input of shape [${x.join(', ')}]`);
  }
  return c.keepdims ? [...new Array<number>(spatial).fill(1), x[spatial]!] : [x[spatial]!];
}

/** The spatial axes of an activation [.., N, ..spatial, C] (task-batched: one more leading axis). */
export function spatialAxes(rank: number, spatial: 1 | 2): number[] {
  return Array.from({ length: spatial }, (_, i) => rank - 1 - spatial + i);
}

/** A 2-D pool (NHWC) on tfjs' own op; task-batched with the tasks folded into the batch. */
export function pool2d(type: string, op: 'maxPool' | 'avgPool'): AnyLayerDef {
  return defineLayer<PoolConfig>({
    type,
    schema: poolSchema(2),
    shape: (c, [x]) => poolShape(c, x!, 2),
    forward: (tf, c, [x]) => tf[op](x as Tensor4D, square(c.pool_size), square(c.strides), c.padding),
    forwardBatched: 'fold',
  });
}

/** A global pool over the `spatial` axes; task-batched on the same axes (counted from the right). */
export function globalPool(type: string, op: 'mean' | 'max', spatial: 1 | 2): AnyLayerDef {
  return defineLayer<GlobalConfig>({
    type,
    schema: globalSchema,
    shape: (c, [x]) => globalShape(c, x!, spatial),
    forward: (tf, c, [x]) => tf[op](x!, spatialAxes(x!.rank, spatial), c.keepdims),
    forwardBatched: (tf, c, [x]) => tf[op](x!, spatialAxes(x!.rank, spatial), c.keepdims),
  });
}

/**
 * Dense: y = activation(x·W + b) over the last axis. W [in, units] (Keras' kernel), b [units].
 * Inputs of rank > 1 per example ([L, C]) apply it to each position, as Keras does. The last Dense
 * of a model may omit `units`: the task's output count.
 * Task-batched: W [T, in, units] as one batched matMul per task.
 */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { ActivationSchema, applyActivation } from '../activations.js';
import { initializer } from '../options.js';
import { defineLayer, type Tensor, type Tf } from '../types.js';

const schema = z.strictObject({
  units: z.number().int().min(1).max(1 << 20).optional(),
  activation: ActivationSchema,
  use_bias: z.boolean().default(true),
  kernel_initializer: initializer('glorot_uniform'),
  bias_initializer: initializer('zeros'),
  // Keras 3 writes it (null: not quantized).
  quantization_config: z.null().optional(),
});
type Config = z.output<typeof schema>;

function units(c: Config, ctx: { outputs: number; lastDense: boolean }): number {
  if (c.units !== undefined) return c.units;
  if (ctx.lastDense) return ctx.outputs;
  throw new ModelError('units is required (only the last Dense may leave it out, to get the task outputs)', 'units');
}

function dense(tf: Tf, c: Config, x: Tensor, w: Tensor, b: Tensor | undefined, batched: boolean): Tensor {
  const lead = batched ? 2 : 1;
  const [inputs, out] = w.shape.slice(-2) as [number, number];
  // matMul on [.., N, in]: an [N, L, in] input goes through as [N·L, in] (the common case, rank 2, unchanged).
  const deep = x.rank > lead + 1;
  const h = deep ? tf.reshape(x, batched ? [x.shape[0], -1, inputs] : [-1, inputs]) : x;
  let y = tf.matMul(h, w);
  // Batched: b [T, out] broadcasts over the rows of each task as [T, 1, out].
  if (b) y = tf.add(y, batched ? tf.expandDims(b, 1) : b);
  if (deep) y = tf.reshape(y, [...x.shape.slice(0, -1), out]);
  return applyActivation(tf, c.activation, y);
}

export const Dense = defineLayer<Config>({
  type: 'Dense',
  schema,
  shape: (c, [x], ctx) => [...x!.slice(0, -1), units(c, ctx)],
  params: (c, [x], ctx) => {
    const u = units(c, ctx);
    const w = { param: 'w', shape: [x!.at(-1)!, u], init: c.kernel_initializer, keras: 'kernel' };
    return c.use_bias ? [w, { param: 'b', shape: [u], init: c.bias_initializer, keras: 'bias' }] : [w];
  },
  forward: (tf, c, [x], p) => dense(tf, c, x!, p.w!, p.b, false),
  forwardBatched: (tf, c, [x], p) => dense(tf, c, x!, p.w!, p.b, true),
});

/**
 * BatchNormalization, transductive as in MAML: every call normalises with the statistics of the
 * batch it is given (support and query sets separately), over every axis but the channel (last)
 * axis, then applies the learned scale (γ) and offset (β). No moving statistics while training:
 * `momentum` and the moving_* initialisers are accepted and unused (export decides what they
 * become). epsilon: Keras' default 1e-3 (the Conv4 preset sets 1e-5).
 * Task-batched: each task's statistics over its own batch ([T, B, ...] reduced over B and space).
 * Per task, one fused kernel where the backend has it (../fused-kernels.ts: tensorflow on a CPU).
 */
import { z } from 'zod';
import { ModelError } from '../../errors.js';
import { fusedBatchNorm } from '../fused-kernels.js';
import { initializer, positive } from '../options.js';
import type { Initializer } from '../initializers.js';
import { defineLayer, type ParamDecl, type Tensor, type Tf } from '../types.js';

const schema = z.strictObject({
  axis: z.union([z.literal(-1), z.number().int().min(1)], { error: 'expected -1 (the channel axis) or the index of the last axis' }).default(-1),
  epsilon: positive().default(1e-3),
  center: z.boolean().default(true),
  scale: z.boolean().default(true),
  momentum: z.number().min(0).max(1).optional(),
  beta_initializer: initializer('zeros'),
  gamma_initializer: initializer('ones'),
  moving_mean_initializer: z.unknown().optional(),
  moving_variance_initializer: z.unknown().optional(),
  renorm: z.literal(false).optional(),
  // Keras 3 writes these beside renorm: false (unused then).
  renorm_clipping: z.null().optional(),
  renorm_momentum: z.number().optional(),
  synchronized: z.literal(false).optional(),
});
type Config = z.output<typeof schema>;

/** (x − mean) / sqrt(var + ε) over `axes`, then · scale + offset (each when present). */
export function normalize(tf: Tf, x: Tensor, axes: number[], epsilon: number, scale: Tensor | undefined, offset: Tensor | undefined): Tensor {
  const { mean, variance } = tf.moments(x, axes, true);
  let y = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon)));
  if (scale) y = tf.mul(y, scale);
  if (offset) y = tf.add(y, offset);
  return y;
}

/** [T, C] per-task parameters as [T, 1, …, 1, C] against an activation of rank `rank`. */
export function perTask(tf: Tf, p: Tensor | undefined, rank: number): Tensor | undefined {
  return p && tf.reshape(p, [p.shape[0], ...new Array<number>(rank - 2).fill(1), p.shape[1]!]);
}

/** γ (`scale`) and β (`offset`) per channel, each unless switched off (BN and LN alike). */
export function scaleOffset(c: { scale: boolean; center: boolean; gamma_initializer: Initializer; beta_initializer: Initializer }, channels: number): ParamDecl[] {
  const out: ParamDecl[] = [];
  if (c.scale) out.push({ param: 'scale', shape: [channels], init: c.gamma_initializer, keras: 'gamma' });
  if (c.center) out.push({ param: 'offset', shape: [channels], init: c.beta_initializer, keras: 'beta' });
  return out;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

export const BatchNormalization = defineLayer<Config>({
  type: 'BatchNormalization',
  schema,
  shape: (c, [x]) => {
    if (c.axis !== -1 && c.axis !== x!.length) throw new ModelError(`only the channel (last) axis is normalised per feature: use axis -1 (or ${x!.length}), got ${c.axis}`, 'axis');
    return x!;
  },
  params: (c, [x]) => scaleOffset(c, x!.at(-1)!),
  forward: (tf, c, [x], p) => fusedBatchNorm(tf, x!, c.epsilon, p.scale, p.offset) ?? normalize(tf, x!, range(0, x!.rank - 1), c.epsilon, p.scale, p.offset),
  forwardBatched: (tf, c, [x], p) => normalize(tf, x!, range(1, x!.rank - 1), c.epsilon, perTask(tf, p.scale, x!.rank), perTask(tf, p.offset, x!.rank)),
});

/**
 * Training-mode batch norm on libtensorflow as two kernels, each one TensorFlow op: the forward
 * (FusedBatchNormV3, is_training) and its gradient (FusedBatchNormGradV3). The tfjs composite they
 * replace on this backend (ops/batch-norm.ts: moments, sub, add, sqrt, div, mul, add) is 11 kernels
 * forward and ~60 backward, each a full pass over the activation; measured on a Conv4 block of 75
 * images (14×14×64, one thread): forward 0.95 ms instead of 9.7, forward + backward 2.6 ms instead
 * of 48.
 *
 * Statistics over every axis but the last (channels), as the layer contract says; inputs of other
 * ranks than 4 run as [M, 1, 1, C]. Outputs of the forward: y, the batch mean and the biased batch
 * variance (TensorFlow's reserve spaces 1 and 2 on a CPU), which the gradient takes as attributes:
 * constants to the tape, because its own gradient (gradients/batch-norm-grad.ts) is the total
 * derivative through them.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { FUSED_BATCH_NORM } from '@metaloop/shared';
import { KernelSetupError } from '../../errors.js';
import { nativeOps, type Handle, type NativeOps } from './native.js';

/** The kernel the BatchNormalization layer runs where it is registered (shared/src/model/fused-kernels.ts). */
export const BATCH_NORM = FUSED_BATCH_NORM;
export const BATCH_NORM_GRAD = 'MetaloopBatchNormGrad';

export interface BatchNormAttrs {
  readonly epsilon: number;
}

export interface BatchNormGradAttrs {
  readonly epsilon: number;
  /** The forward's batch mean and biased variance (its outputs 1 and 2). */
  readonly mean: tf.TensorInfo;
  readonly variance: tf.TensorInfo;
}

/** x as a 4-D NHWC operand (a Reshape for other ranks) and whether it was reshaped. */
function as4d(ops: NativeOps, x: tf.TensorInfo): { x4: tf.TensorInfo | Handle; reshaped: boolean } {
  if (x.shape.length === 4) return { x4: x, reshaped: false };
  const c = x.shape[x.shape.length - 1] ?? 1;
  const m = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const [x4] = ops.raw('Reshape', [ops.attr.T, ops.attr.type('Tshape', 'int32')], [x, ops.constInt32([m, 1, 1, c])]);
  return { x4: x4!, reshaped: true };
}

/** A 4-D result back in x's shape (the handle is consumed). */
function back(ops: NativeOps, h: Handle, shape: readonly number[], reshaped: boolean): tf.TensorInfo {
  if (!reshaped) return ops.wrap(h);
  const out = ops.run('Reshape', [ops.attr.T, ops.attr.type('Tshape', 'int32')], [h, ops.constInt32(shape)]);
  ops.release(h);
  return out;
}

function float32Only(kernel: string, ...ts: tf.TensorInfo[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new KernelSetupError(`${kernel}: float32 inputs only, got ${t.dtype}`);
}

export const batchNormTensorflowConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, scale, offset } = inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
    const { epsilon } = attrs as unknown as BatchNormAttrs;
    float32Only(BATCH_NORM, x, scale, offset);
    const ops = nativeOps(backend);
    const a = ops.attr;
    const { x4, reshaped } = as4d(ops, x);
    const empty = ops.constFloat([]);
    const out = ops.raw(
      'FusedBatchNormV3',
      [a.T, a.type('U', 'float32'), a.float('epsilon', epsilon), a.float('exponential_avg_factor', 1), a.str('data_format', 'NHWC'), a.bool('is_training', true)],
      [x4, scale, offset, empty, empty],
      6,
    );
    if (reshaped) ops.release(x4 as Handle);
    const [y, batchMean, batchVar, mean, variance, reserve3] = out as [Handle, Handle, Handle, Handle, Handle, Handle];
    ops.release(batchMean, batchVar);
    // On a CPU the third reserve space is empty; a build that keeps a workspace there (oneDNN) would
    // need it passed to the gradient, which these kernels do not do.
    const workspace = reserve3.shape.reduce((p, d) => p * d, 1);
    ops.release(reserve3);
    if (workspace !== 0) {
      ops.release(y, mean, variance);
      throw new KernelSetupError(`${BATCH_NORM}: FusedBatchNormV3 returned a workspace of ${workspace} values (reserve_space_3); this libtensorflow build is not supported by the fused batch norm`);
    }
    return [back(ops, y, x.shape, reshaped), ops.wrap(mean), ops.wrap(variance)];
  },
};

export const batchNormGradTensorflowConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_GRAD,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy, x, scale } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; scale: tf.TensorInfo };
    const { epsilon, mean, variance } = attrs as unknown as BatchNormGradAttrs;
    if (!mean || !variance) throw new KernelSetupError(`${BATCH_NORM_GRAD}: attributes mean and variance (the forward's outputs 1 and 2) missing`);
    float32Only(BATCH_NORM_GRAD, dy, x, scale);
    const ops = nativeOps(backend);
    const a = ops.attr;
    const { x4: dy4, reshaped } = as4d(ops, dy);
    const { x4 } = as4d(ops, x);
    const out = ops.raw(
      'FusedBatchNormGradV3',
      [a.T, a.type('U', 'float32'), a.float('epsilon', epsilon), a.str('data_format', 'NHWC'), a.bool('is_training', true)],
      [dy4, x4, scale, mean, variance, ops.constFloat([])],
      5,
    );
    if (reshaped) ops.release(dy4 as Handle, x4 as Handle);
    const [dx, dscale, doffset, r4, r5] = out as [Handle, Handle, Handle, Handle, Handle];
    ops.release(r4, r5);
    return [back(ops, dx, x.shape, reshaped), ops.wrap(dscale), ops.wrap(doffset)];
  },
};

export const BATCH_NORM_GRAD_GRAD = 'MetaloopBatchNormGradGrad';

/**
 * The closed-form gradient of MetaloopBatchNormGrad (formulas: ../../gradients/batch-norm-grad.ts)
 * as one kernel: the same TensorFlow ops in the same order as the tfjs composite there (so the
 * same bits), without ~45 tfjs kernels per batch-norm layer. Inputs: the upstream gradients g, gScale,
 * gOffset of (dx, dscale, doffset) and the node's saved dy, x, scale; outputs ∂/∂dy, ∂/∂scale, ∂/∂x.
 * Not itself differentiable: under a recording tape (a third derivative) the composite is used.
 */
export const batchNormGradGradTensorflowConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_GRAD_GRAD,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { g, gScale, gOffset, dy, x, scale } = inputs as Record<'g' | 'gScale' | 'gOffset' | 'dy' | 'x' | 'scale', tf.TensorInfo>;
    const { epsilon, mean, variance } = attrs as unknown as BatchNormGradAttrs;
    if (!mean || !variance) throw new KernelSetupError(`${BATCH_NORM_GRAD_GRAD}: attributes mean and variance missing`);
    float32Only(BATCH_NORM_GRAD_GRAD, g, gScale, gOffset, dy, x, scale);
    const ops = nativeOps(backend);
    const T = [ops.attr.T];
    const made: Handle[] = [];
    type In = tf.TensorInfo | Handle | number;
    const op = (name: string, ...args: In[]): Handle => {
      const [h] = ops.raw(name, T, args);
      made.push(h!);
      return h!;
    };
    const axes = ops.constInt32(Array.from({ length: x.shape.length - 1 }, (_, i) => i));
    const reduce = (name: 'Mean' | 'Sum', t: In): Handle => {
      const [h] = ops.raw(name, [ops.attr.bool('keep_dims', false), ops.attr.T, ops.attr.type('Tidx', 'int32')], [t, axes]);
      made.push(h!);
      return h!;
    };
    const n = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const r = op('Rsqrt', op('Add', variance, ops.constFloat(epsilon)));
    const xh = op('Mul', op('Sub', x, mean), r);
    const u = op('Mul', scale, r);
    const m2 = reduce('Mean', op('Mul', dy, xh));
    const t = op('Sub', op('Sub', dy, reduce('Mean', dy)), op('Mul', xh, m2));
    const gm2 = reduce('Mean', op('Mul', g, xh));
    const s = reduce('Sum', op('Mul', g, t));
    const gdy = op('Add', op('Add', gOffset, op('Mul', gScale, xh)), op('Mul', u, op('Sub', op('Sub', g, reduce('Mean', g)), op('Mul', xh, gm2))));
    const gsc = op('Mul', r, s);
    const a = op('Sub', op('Mul', gScale, dy), op('Mul', u, op('Add', op('Mul', g, m2), op('Mul', dy, gm2))));
    const bn = op('Mul', r, op('Sub', op('Sub', a, reduce('Mean', a)), op('Mul', xh, reduce('Mean', op('Mul', a, xh)))));
    const gx = op('Sub', bn, op('Mul', op('RealDiv', op('Mul', op('Mul', scale, s), op('Square', r)), ops.constFloat(n)), xh));
    const outs = [gdy, gsc, gx];
    ops.release(...made.filter((h) => !outs.includes(h)));
    return outs.map((h) => ops.wrap(h));
  },
};

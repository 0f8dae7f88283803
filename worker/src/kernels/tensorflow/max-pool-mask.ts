/**
 * The gradient of a max pool whose windows tile the input (filter = stride, no padding: Conv4's
 * 2×2/2 'valid' pool) from a mask of each window's first maximum, in vectorised TensorFlow ops.
 *
 * Why: TensorFlow's CPU MaxPoolGrad (and MaxPoolWithArgmax, MaxPoolGradGrad) finds each window's
 * arg-max again in a scalar loop: 24 ms on a Conv4 activation of 75 images at 28×28×64 where the
 * forward pool takes 2.8 ms (one thread). Here the arg-max is an Equal of x against the pooled y
 * broadcast over the window, made exclusive by the smallest row-major tap index among a window's
 * maxima (found by a max-pool of per-tap scores), so each window keeps its FIRST maximum: the tap TensorFlow's kernel picks (its loop keeps a
 * new value only when strictly greater), which matters after a ReLU, where windows of zeros tie.
 * The results are therefore bitwise TensorFlow's MaxPoolGrad (and the adjoint, bitwise the tap
 * gather of gradients/max-pool-grad.ts), checked in the tests.
 *
 * Two kernels, adjoint linear maps of each other, so each is the other's gradient:
 *   MetaloopMaxPoolGradMask:   dy [N, oh, ow, C] → dx [N, H, W, C] (dy scattered to the first maxima)
 *   MetaloopMaxPoolGatherMask: ddx [N, H, W, C] → [N, oh, ow, C] (ddx read at the first maxima)
 * The pool's input x and output y are attributes: constants to a tape (the gradient is piecewise
 * constant in them), so no zero gradients are formed for them.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../../errors.js';
import { nativeOps, type Handle, type NativeOps } from './native.js';

export const MAX_POOL_GRAD_MASK = 'MetaloopMaxPoolGradMask';
export const MAX_POOL_GATHER_MASK = 'MetaloopMaxPoolGatherMask';

export interface MaxPoolMaskAttrs {
  /** The pool's input [N, H, W, C] and output [N, oh, ow, C]. */
  readonly x: tf.TensorInfo;
  readonly y: tf.TensorInfo;
  /** Window (= stride) height and width. */
  readonly fh: number;
  readonly fw: number;
}

interface Geometry {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly oh: number;
  readonly ow: number;
  readonly fh: number;
  readonly fw: number;
  /** Rows and columns no window covers (a 'valid' pool of a size that is not a multiple). */
  readonly cropped: boolean;
}

function geometry(kernel: string, a: MaxPoolMaskAttrs): Geometry {
  if (!a.x || !a.y) throw new KernelSetupError(`${kernel}: attributes x and y (the pool's input and output) missing`);
  const [n, h, w, c] = a.x.shape as [number, number, number, number];
  const [, oh, ow] = a.y.shape as [number, number, number, number];
  if (a.x.shape.length !== 4 || oh !== Math.floor(h / a.fh) || ow !== Math.floor(w / a.fw)) {
    throw new KernelSetupError(`${kernel}: x [${a.x.shape.join(', ')}] and y [${a.y.shape.join(', ')}] are not a ${a.fh}×${a.fw}/${a.fh}×${a.fw} 'valid' pool`);
  }
  return { n, h, w, c, oh, ow, fh: a.fh, fw: a.fw, cropped: oh * a.fh !== h || ow * a.fw !== w };
}

const six = (g: Geometry) => [g.n, g.oh, g.fh, g.ow, g.fw, g.c];
const sixPooled = (g: Geometry) => [g.n, g.oh, 1, g.ow, 1, g.c];

function reshape(ops: NativeOps, x: tf.TensorInfo | Handle, shape: readonly number[]): Handle {
  return ops.raw('Reshape', [ops.attr.T, ops.attr.type('Tshape', 'int32')], [x, ops.constInt32(shape)])[0]!;
}

/** The window-covered part of an [N, H, W, C] tensor as [N, oh, fh, ow, fw, C]. */
function windows(ops: NativeOps, t: tf.TensorInfo, g: Geometry): Handle {
  if (!g.cropped) return reshape(ops, t, six(g));
  const [part] = ops.raw('Slice', [ops.attr.T, ops.attr.type('Index', 'int32')], [t, ops.constInt32([0, 0, 0, 0]), ops.constInt32([g.n, g.oh * g.fh, g.ow * g.fw, g.c])]);
  const out = reshape(ops, part!, six(g));
  ops.release(part!);
  return out;
}

/**
 * bool [N, oh, fh, ow, fw, C]: true at each window's first maximum (row-major over the window). The
 * taps equal to the window's max score fh·fw − (their row-major index), the others 0; TensorFlow's
 * vectorised MaxPool of the scores gives each window the first maximum's score, and only that tap
 * equals it. (A Min reduction of tap indices over the window axes [2, 4] took 35 ms on a 75-image
 * Conv4 activation at 28×28×64, Eigen reducing two strided axes; a prefix count by Cumsum 3.5 ms
 * per call on a smaller one. This: about 10 ms for the whole mask there.)
 */
function firstMaxMask(ops: NativeOps, a: MaxPoolMaskAttrs, g: Geometry): Handle {
  const x6 = windows(ops, a.x, g);
  const y6 = reshape(ops, a.y, sixPooled(g));
  const f = ops.attr;
  const [eq] = ops.raw('Equal', [f.T, f.bool('incompatible_shape_error', true)], [x6, y6]);
  ops.release(x6, y6);
  if (g.fh * g.fw === 1) return eq!;
  const taps = g.fh * g.fw;
  const rank = ops.constFloats(Array.from({ length: taps }, (_, i) => taps - i), [1, 1, g.fh, 1, g.fw, 1]);
  const [score] = ops.raw('SelectV2', [f.T], [eq!, rank, ops.constFloat(0)]);
  const score4 = reshape(ops, score!, [g.n, g.oh * g.fh, g.ow * g.fw, g.c]);
  const window = [1, g.fh, g.fw, 1];
  const [best] = ops.raw('MaxPool', [f.T, f.int('ksize', window), f.int('strides', window), f.str('padding', 'VALID'), f.str('data_format', 'NHWC')], [score4]);
  const best6 = reshape(ops, best!, sixPooled(g));
  const [mask] = ops.raw('Equal', [f.T, f.bool('incompatible_shape_error', true)], [score!, best6]);
  ops.release(eq!, score!, score4, best!, best6);
  return mask!;
}

/**
 * The kernels' common part: `operand6` (made from the kernel's tensor input, [N, oh, 1|fh, ow, 1|fw, C])
 * where the window's first maximum is, 0 elsewhere, as [N, oh, fh, ow, fw, C].
 */
function atFirstMax(kernel: string, args: Parameters<tf.KernelFunc>[0], operand6: (ops: NativeOps, g: Geometry, t: tf.TensorInfo) => Handle) {
  const t = Object.values(args.inputs)[0] as tf.TensorInfo;
  const a = args.attrs as unknown as MaxPoolMaskAttrs;
  const g = geometry(kernel, a);
  const ops = nativeOps(args.backend);
  const mask = firstMaxMask(ops, a, g);
  const t6 = operand6(ops, g, t);
  const [picked] = ops.raw('SelectV2', [ops.attr.T], [mask, t6, ops.constFloat(0)]);
  ops.release(mask, t6);
  return { ops, g, picked: picked! };
}

export const maxPoolGradMaskTensorflowConfig: tf.KernelConfig = {
  kernelName: MAX_POOL_GRAD_MASK,
  backendName: 'tensorflow',
  kernelFunc: (args) => {
    const { ops, g, picked } = atFirstMax(MAX_POOL_GRAD_MASK, args, (o, geo, dy) => reshape(o, dy, sixPooled(geo)));
    const covered = [g.n, g.oh * g.fh, g.ow * g.fw, g.c];
    if (!g.cropped) {
      const out = ops.run('Reshape', [ops.attr.T, ops.attr.type('Tshape', 'int32')], [picked, ops.constInt32(covered)]);
      ops.release(picked);
      return out;
    }
    const dxc = reshape(ops, picked, covered);
    const pads = ops.constInt32([0, 0, 0, g.h - g.oh * g.fh, 0, g.w - g.ow * g.fw, 0, 0], [4, 2]);
    const out = ops.run('Pad', [ops.attr.T, ops.attr.type('Tpaddings', 'int32')], [dxc, pads]);
    ops.release(picked, dxc);
    return out;
  },
};

export const maxPoolGatherMaskTensorflowConfig: tf.KernelConfig = {
  kernelName: MAX_POOL_GATHER_MASK,
  backendName: 'tensorflow',
  kernelFunc: (args) => {
    const { ops, picked } = atFirstMax(MAX_POOL_GATHER_MASK, args, (o, geo, ddx) => windows(o, ddx, geo));
    const out = ops.run('Sum', [ops.attr.T, ops.attr.type('Tidx', 'int32'), ops.attr.bool('keep_dims', false)], [picked, ops.constInt32([2, 4])]);
    ops.release(picked);
    return out;
  },
};

/**
 * Gradients of Add, Sub, Multiply and RealDiv with upstream's arithmetic, bitwise, minus its no-op
 * kernels: upstream reshapes every gradient to its input's shape even when nothing was reduced (on
 * tfjs-node a Reshape is a TensorFlow op, plus its shape tensor) and casts float32 operands to
 * float32 before multiplying (a Cast kernel each). On a second-order Conv4 MAML task these were
 * ~120 Reshape and ~50 Cast kernels. Where nothing is reduced the gradient is a clone of dy
 * (Identity: the same data, no copy) where upstream returned a reshaped copy of it.
 *
 * Sum and Mean: upstream broadcasts dy to the input's shape by multiplying with ones(x.shape), made
 * in JavaScript and copied into the backend, the size of x. On the tensorflow backend this is a
 * BroadcastTo kernel instead (../kernels/tensorflow/plumbing.ts; the same values: dy · 1 = dy,
 * and its gradient, upstream's, sums over the same axes); other backends keep upstream's product.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from './native-kernels.js';
import { savedAt, single } from './util.js';

const { assertAndGetBroadcastShape, getReductionAxes } = tf.backend_util;

/** dy summed over the axes `shape` was broadcast along, in `shape` (dy itself, cloned, when none). */
function unbroadcast(dy: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = getReductionAxes(shape, outShape);
  if (axes.length > 0) return tf.reshape(tf.sum(dy, axes), shape);
  return tf.util.arraysEqual(dy.shape, shape) ? tf.clone(dy) : tf.reshape(dy, shape);
}

/** As unbroadcast, but reshaping f(summed) (Sub's derB: reshape(neg(sum(dy)))). */
function unbroadcastThen(dy: tf.Tensor, shape: number[], outShape: number[], f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const axes = getReductionAxes(shape, outShape);
  const r = f(axes.length > 0 ? tf.sum(dy, axes) : dy);
  return tf.util.arraysEqual(r.shape, shape) ? r : tf.reshape(r, shape);
}

const asFloat = (t: tf.Tensor) => (t.dtype === 'float32' ? t : tf.cast(t, 'float32'));

function operands(kernel: string, saved: tf.Tensor[]) {
  const a = savedAt(saved, 0, kernel);
  const b = savedAt(saved, 1, kernel);
  return { a, b, out: assertAndGetBroadcastShape(a.shape, b.shape) };
}

export const addGradConfig: tf.GradConfig = {
  kernelName: tf.Add,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const { a, b, out } = operands(tf.Add, saved);
    return { a: () => unbroadcast(dy, a.shape, out), b: () => unbroadcast(dy, b.shape, out) };
  },
};

export const subGradConfig: tf.GradConfig = {
  kernelName: tf.Sub,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const { a, b, out } = operands(tf.Sub, saved);
    return { a: () => unbroadcast(dy, a.shape, out), b: () => unbroadcastThen(dy, b.shape, out, tf.neg) };
  },
};

export const multiplyGradConfig: tf.GradConfig = {
  kernelName: tf.Multiply,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const { a, b, out } = operands(tf.Multiply, saved);
    const part = (other: tf.Tensor, shape: number[]) => () => {
      const res = tf.mul(dy, asFloat(other));
      const axes = getReductionAxes(shape, out);
      return axes.length > 0 ? tf.reshape(tf.sum(res, axes), shape) : res;
    };
    return { a: part(b, a.shape), b: part(a, b.shape) };
  },
};

export const divGradConfig: tf.GradConfig = {
  kernelName: tf.RealDiv,
  inputsToSave: ['a', 'b'],
  gradFunc: (dyIn, saved) => {
    const dy = single(dyIn);
    const { a, b, out } = operands(tf.RealDiv, saved);
    return {
      a: () => {
        const res = tf.div(dy, asFloat(b));
        const axes = getReductionAxes(a.shape, out);
        return axes.length > 0 ? tf.reshape(tf.sum(res, axes), a.shape) : res;
      },
      b: () => {
        let res = tf.mul(dy, asFloat(a));
        const axes = getReductionAxes(b.shape, out);
        if (axes.length > 0) res = tf.reshape(tf.sum(res, axes), b.shape);
        return tf.neg(tf.div(res, asFloat(tf.square(b))));
      },
    };
  },
};

/** dy (reduced over `axes` of x) back in x's shape: BroadcastTo on tensorflow, upstream's · ones elsewhere. */
function expand(dy: tf.Tensor, x: tf.Tensor, axisAttr: number | number[] | undefined): tf.Tensor {
  const axes = tf.util.parseAxisParam(axisAttr ?? x.shape.map((_, i) => i), x.shape);
  const kept = x.shape.slice();
  for (const ax of axes) kept[ax] = 1;
  const e = tf.reshape(dy, kept);
  if (hasKernel(tf.BroadcastTo)) return tf.engine().runKernel<tf.Tensor>(tf.BroadcastTo, { x: e }, { shape: x.shape, inputShape: kept });
  return tf.mul(e, tf.ones(x.shape, 'float32'));
}

export const sumGradConfig: tf.GradConfig = {
  kernelName: tf.Sum,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved, attrs) => {
    const x = savedAt(saved, 0, tf.Sum);
    // upstream computes it eagerly too (not inside the closure)
    const dx = expand(single(dyIn), x, (attrs as unknown as tf.SumAttrs).axis);
    return { x: () => dx };
  },
};

export const meanGradConfig: tf.GradConfig = {
  kernelName: tf.Mean,
  inputsToSave: ['x'],
  gradFunc: (dyIn, saved, attrs) => {
    const x = savedAt(saved, 0, tf.Mean);
    const axis = (attrs as unknown as tf.MeanAttrs).axis;
    const reduceSize = tf.util.sizeFromShape(tf.backend_util.computeOutAndReduceShapes(x.shape, tf.util.parseAxisParam(axis, x.shape))[1]);
    return { x: () => tf.div(expand(single(dyIn), x, axis), reduceSize) };
  },
};

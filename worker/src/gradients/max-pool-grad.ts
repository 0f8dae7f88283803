/**
 * Gradient of MaxPoolGrad (dx = scatter of dy to each window's argmax), which TF.js 4.22 does not
 * register: second-order MAML through a max-pool layer throws "gradient function not found".
 *
 * dx is linear in dy and piecewise constant in the pooled input x (and output y), so
 *   ∂/∂dy = ddx gathered at the argmax of every window;   ∂/∂x = ∂/∂y = 0 (almost everywhere).
 * There is no MaxPoolWithArgmax kernel on tfjs-node, so the argmax is found with ops every backend
 * has: for each tap (kh, kw) of the window, in row-major order, take the strided view of x and keep
 * the first tap equal to the window's max y. This is the tap the cpu and TF kernels pick on ties
 * (first maximum in row-major order), which matters after a ReLU, where ties at 0 are common.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../errors.js';
import { padForPool, poolGeometry, savedAt, single, windowTap } from './util.js';

/** Σ over taps of ddx[tap] · [tap is the window's first argmax]: the adjoint of MaxPoolGrad in dy. */
export function gatherAtArgmax(
  ddx: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  attrs: tf.MaxPoolGradAttrs,
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = poolGeometry(x.shape, attrs.filterSize, attrs.strides, attrs.pad, attrs.dimRoundingMode);
    const xPad = padForPool(x, g, Number.NEGATIVE_INFINITY);
    const dPad = padForPool(ddx, g, 0);
    let found: tf.Tensor | null = null;
    let out: tf.Tensor | null = null;
    for (let kh = 0; kh < g.fH; kh++) {
      for (let kw = 0; kw < g.fW; kw++) {
        const hit = tf.equal(windowTap(xPad, g, kh, kw), y);
        const first: tf.Tensor = found === null ? hit : tf.logicalAnd(hit, tf.logicalNot(found));
        found = found === null ? hit : tf.logicalOr(found, hit);
        const term = tf.mul(windowTap(dPad, g, kh, kw), tf.cast(first, 'float32'));
        out = out === null ? term : tf.add(out, term);
      }
    }
    if (out === null) throw new KernelSetupError('MaxPoolGrad gradient: empty pooling window');
    return out as tf.Tensor4D;
  });
}

export const maxPoolGradGradConfig: tf.GradConfig = {
  kernelName: tf.MaxPoolGrad,
  inputsToSave: ['input', 'output'],
  gradFunc: (ddxIn, saved, attrs) => {
    const ddx = single(ddxIn) as tf.Tensor4D;
    const x = savedAt(saved, 0, tf.MaxPoolGrad) as tf.Tensor4D;
    const y = savedAt(saved, 1, tf.MaxPoolGrad) as tf.Tensor4D;
    const a = attrs as unknown as tf.MaxPoolGradAttrs;
    return {
      dy: () => gatherAtArgmax(ddx, x, y, a),
      input: () => tf.zerosLike(x),
      output: () => tf.zerosLike(y),
    };
  },
};

/**
 * Gradient of MetaloopBatchNormGrad (the fused batch norm's backward), for second-order MAML: the
 * vector-Jacobian product of (dx, dscale, doffset) = BNGrad(dy, x, scale) in closed form, in tfjs
 * ops (themselves differentiable), the total derivative through the batch statistics (which the
 * kernel takes as attributes: constants to the tape).
 *
 * Per channel, sums and means over every other axis (N values): r = (σ² + ε)^-½, x̂ = (x − μ)·r,
 * u = γ·r, m1 = mean(dy), m2 = mean(dy·x̂), t = dy − m1 − x̂·m2; forward of this node:
 *   doffset = Σ dy,  dscale = Σ dy·x̂,  dx = u·t.
 * For upstream gradients g (of dx), gγ (of dscale), gβ (of doffset), with gm1 = mean(g),
 * gm2 = mean(g·x̂) and S = Σ g·t:
 *   ∂/∂dy    = gβ + gγ·x̂ + u·(g − gm1 − x̂·gm2)
 *   ∂/∂scale = r·S
 *   ∂/∂x     = r·(a − mean(a) − x̂·mean(a·x̂)) − (γ·S·r²/N)·x̂,   a = gγ·dy − u·(g·m2 + dy·gm2)
 * (a = ∂/∂x̂ at fixed r, γ·S = ∂/∂r at fixed x̂; the first term is the batch-norm backward of a,
 * the second r's dependence on σ²). Checked against central finite differences in the tests.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BATCH_NORM_GRAD, BATCH_NORM_GRAD_GRAD, type BatchNormGradAttrs } from '../kernels/tensorflow/batch-norm.js';
import { hasKernel, runNativeMulti } from './native-kernels.js';
import { savedAt } from './util.js';

/** True while a gradient tape records (the gradient being formed will itself be differentiated). */
function recording(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

export const batchNormGradGradConfig: tf.GradConfig = {
  kernelName: BATCH_NORM_GRAD,
  inputsToSave: ['dy', 'x', 'scale'],
  gradFunc: (gs, saved, attrs) => {
    const [g, gScale, gOffset] = gs as [tf.Tensor, tf.Tensor, tf.Tensor];
    const dy = savedAt(saved, 0, BATCH_NORM_GRAD);
    const x = savedAt(saved, 1, BATCH_NORM_GRAD);
    const scale = savedAt(saved, 2, BATCH_NORM_GRAD);
    const { epsilon, mean, variance } = attrs as unknown as BatchNormGradAttrs & { mean: tf.Tensor; variance: tf.Tensor };
    if (!recording() && hasKernel(BATCH_NORM_GRAD_GRAD)) {
      // The same ops as below in one kernel (bitwise the same values); not differentiable itself.
      const [gdy, gsc, gx] = runNativeMulti(BATCH_NORM_GRAD_GRAD, { g, gScale, gOffset, dy, x, scale }, { epsilon, mean, variance }) as [tf.Tensor, tf.Tensor, tf.Tensor];
      return { dy: () => gdy, scale: () => gsc, x: () => gx };
    }
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const n = x.size / (x.shape[x.rank - 1] ?? 1);
    const avg = (t: tf.Tensor) => tf.mean(t, axes);
    // Shared by all three gradients: made in the backward pass's scope, outside the closures' tidies.
    const r = tf.rsqrt(tf.add(variance, epsilon));
    const xh = tf.mul(tf.sub(x, mean), r);
    const u = tf.mul(scale, r);
    const m2 = avg(tf.mul(dy, xh));
    const t = tf.sub(tf.sub(dy, avg(dy)), tf.mul(xh, m2));
    const gm2 = avg(tf.mul(g, xh));
    const s = tf.sum(tf.mul(g, t), axes);
    return {
      dy: () => tf.add(tf.add(gOffset, tf.mul(gScale, xh)), tf.mul(u, tf.sub(tf.sub(g, avg(g)), tf.mul(xh, gm2)))),
      scale: () => tf.mul(r, s),
      x: () => {
        const a = tf.sub(tf.mul(gScale, dy), tf.mul(u, tf.add(tf.mul(g, m2), tf.mul(dy, gm2))));
        const bn = tf.mul(r, tf.sub(tf.sub(a, avg(a)), tf.mul(xh, avg(tf.mul(a, xh)))));
        return tf.sub(bn, tf.mul(tf.div(tf.mul(tf.mul(scale, s), tf.square(r)), n), xh));
      },
    };
  },
};

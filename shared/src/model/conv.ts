/**
 * Sliding-window arithmetic shared by convolutions and pools (TensorFlow's conventions, which Keras
 * and tfjs follow), and the task-batched convolution: per-task filters as shifted-slice products.
 */
import { ModelError } from '../errors.js';
import type { Padding } from './options.js';
import type { Tensor, Tf } from './types.js';

/** Output length of a window `k`, stride `s` over `n`: 'valid' ⌊(n − k)/s⌋ + 1, 'same' ⌈n/s⌉. */
export function windowOut(n: number, k: number, s: number, padding: Padding): number {
  return padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
}

/** Zeros before the first element ('same': half the total, the odd one at the end; 'valid': none). */
export function windowPadBefore(n: number, k: number, s: number, padding: Padding): number {
  if (padding === 'valid') return 0;
  const out = Math.ceil(n / s);
  return Math.floor(Math.max((out - 1) * s + k - n, 0) / 2);
}

/** Output spatial dims of a window over `dims`, or a ModelError naming the option and what fits. */
export function windowShape(dims: readonly number[], k: readonly number[], s: readonly number[], padding: Padding, what: string, option: string): number[] {
  const out = dims.map((n, i) => windowOut(n, k[i]!, s[i]!, padding));
  if (out.some((o) => o < 1)) {
    throw new ModelError(
      `${what} ${k.join('×')} ('valid') does not fit its input ${dims.join('×')}: use padding same, a ${option} of at most ${dims.join('×')}, or a larger input`,
      option,
    );
  }
  return out;
}

/**
 * 2-D convolution with per-task filters: x [T, B, H, W, C], w [T, kh, kw, C, F] → [T, B, OH, OW, F].
 * tfjs convolutions take one filter for the whole batch, so the convolution is an im2col built from
 * shifted slices of the padded input (kh·kw taps), each times its slice of the task's filter as a
 * batched matMul [T, B·OH·OW, C] · [T, C, F], summed (no concat, whose gradient, a split along the
 * channel axis, is a slow strided copy on the JS backends). With a stride s > 1 the taps are read
 * from a [.., OH + ⌊(kh−1)/s⌋, s, OW + ⌊(kw−1)/s⌋, s, C] view of the padded input, so no strided
 * slice is needed: row i·s + r of the view is tap row r of output row i. Pad, slice, reshape, addN
 * and matMul have gradients made of the same ops, so this stays exactly twice differentiable and
 * never touches the Conv2DBackprop* kernels.
 */
export function batchedConv2d(tf: Tf, x: Tensor, w: Tensor, strides: readonly number[], padding: Padding): Tensor {
  const [T, B, H, W, C] = x.shape as [number, number, number, number, number];
  const [, kh, kw, , F] = w.shape as [number, number, number, number, number];
  const [sh, sw] = strides as [number, number];
  const oh = windowOut(H, kh, sh, padding);
  const ow = windowOut(W, kw, sw, padding);
  const top = windowPadBefore(H, kh, sh, padding);
  const left = windowPadBefore(W, kw, sw, padding);
  const flat = tf.reshape(x, [T * B, H, W, C]);
  const taps: Tensor[] = [];
  if (sh === 1 && sw === 1) {
    const p = tf.pad(flat, [[0, 0], [top, oh + kh - 1 - top - H], [left, ow + kw - 1 - left - W], [0, 0]]);
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(tf.slice(p, [0, i, j, 0], [T * B, oh, ow, C]));
  } else {
    const qh = oh + Math.floor((kh - 1) / sh);
    const qw = ow + Math.floor((kw - 1) / sw);
    // Pad (or crop: 'valid' may leave rows no tap reads) to exactly sh·qh × sw·qw.
    const bottom = sh * qh - top - H;
    const right = sw * qw - left - W;
    let p = tf.pad(flat, [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]]);
    if (bottom < 0 || right < 0) p = tf.slice(p, [0, 0, 0, 0], [T * B, sh * qh, sw * qw, C]);
    const v = tf.reshape(p, [T * B, qh, sh, qw, sw, C]);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const tap = tf.slice(v, [0, Math.floor(i / sh), i % sh, Math.floor(j / sw), j % sw, 0], [T * B, oh, 1, ow, 1, C]);
        taps.push(tf.reshape(tap, [T * B, oh, ow, C]));
      }
    }
  }
  const wk = tf.reshape(w, [T, kh * kw, C, F]);
  const terms = taps.map((tap, k) => tf.matMul(tf.reshape(tap, [T, B * oh * ow, C]), tf.reshape(tf.slice(wk, [0, k, 0, 0], [T, 1, C, F]), [T, C, F])));
  return tf.reshape(terms.length === 1 ? terms[0]! : tf.addN(terms), [T, B, oh, ow, F]);
}

/** A window size or stride for tfjs: one number when square (the form the kernels have always seen). */
export function square(v: readonly number[]): number | [number, number] {
  return v[0] === v[1] ? v[0]! : [v[0]!, v[1]!];
}

/**
 * The hand-written MLP and Conv4 forwards as they were before models became layer graphs (issue
 * 24), kept verbatim as references: the mlp and conv4 presets compile to the graph and must give
 * bitwise the same outputs and meta-gradients (model/presets.test.ts). Test-only (src/testing is
 * not in the package's build).
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchNormTraining } from '../ops/batch-norm.js';

export type Named = Record<string, tf.Tensor>;

export interface Conv4Config {
  readonly pool: 'max' | 'stride';
  readonly imageSize: number;
  readonly channels: number;
}

const BN_EPSILON = 1e-5;

function param(params: Named, name: string): tf.Tensor {
  const t = params[name];
  if (!t) throw new Error(`reference model: parameter ${name} missing`);
  return t;
}

/** models/mlp.ts: layers l0..l(n−1), relu | tanh between, per task or task-batched (rank-3 weights). */
export function referenceMlpForward(layers: number, activation: 'relu' | 'tanh', params: Named, x: tf.Tensor): tf.Tensor {
  const act = activation === 'tanh' ? tf.tanh : tf.relu;
  const names = Array.from({ length: layers }, (_, i) => [`l${i}.w`, `l${i}.b`] as const);
  const batched = params[names[0]![0]]?.rank === 3;
  const lead = batched ? 2 : 1;
  let h = x.rank === lead + 1 ? x : tf.reshape(x, [...x.shape.slice(0, lead), -1]);
  for (let i = 0; i < layers; i++) {
    const [wn, bn] = names[i]!;
    const w = param(params, wn);
    const b = param(params, bn);
    h = tf.add(tf.matMul(h, w), w.rank === 3 ? tf.expandDims(b, 1) : b);
    if (i + 1 < layers) h = act(h);
  }
  return h;
}

/** As models/conv4.ts ran it last (issue 27): one fused kernel on tensorflow, the moments composite elsewhere. */
function batchNorm(h: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor): tf.Tensor4D {
  return batchNormTraining(h, scale, offset, BN_EPSILON);
}

/** models/conv4.ts: x [N, S, S, C] → logits [N, outputs]. */
export function referenceConv4Forward(config: Conv4Config, params: Named, x: tf.Tensor): tf.Tensor2D {
  const n = x.shape[0] ?? 0;
  let h = tf.reshape<tf.Rank.R4>(x, [n, config.imageSize, config.imageSize, config.channels]);
  const stride = config.pool === 'stride' ? 2 : 1;
  for (let i = 0; i < 4; i++) {
    const conv = tf.conv2d(h, param(params, `conv${i}.w`) as tf.Tensor4D, stride, 'same');
    h = tf.add<tf.Tensor4D>(conv, param(params, `conv${i}.b`));
    h = batchNorm(h, param(params, `bn${i}.scale`), param(params, `bn${i}.offset`));
    h = tf.relu(h);
    if (config.pool === 'max') h = tf.maxPool(h, 2, 2, 'valid');
  }
  const flat = tf.reshape<tf.Rank.R2>(h, [n, -1]);
  return tf.add<tf.Tensor2D>(tf.matMul(flat, param(params, 'head.w')), param(params, 'head.b'));
}

/** models/conv4-batched.ts: 3×3 'same' convolution with per-task filters (nine shifted-slice products). */
function batchedConv3x3(x: tf.Tensor, w: tf.Tensor, stride: 1 | 2): tf.Tensor {
  const [T, B, H, W, C] = x.shape as [number, number, number, number, number];
  const F = w.shape[4]!;
  const oh = Math.ceil(H / stride);
  const ow = Math.ceil(W / stride);
  const top = Math.floor(Math.max((oh - 1) * stride + 3 - H, 0) / 2);
  const left = Math.floor(Math.max((ow - 1) * stride + 3 - W, 0) / 2);
  const flat = tf.reshape(x, [T * B, H, W, C]);
  const taps: tf.Tensor[] = [];
  if (stride === 1) {
    const p = tf.pad(flat, [[0, 0], [top, oh + 2 - top - H], [left, ow + 2 - left - W], [0, 0]]);
    for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) taps.push(tf.slice(p, [0, kh, kw, 0], [T * B, oh, ow, C]));
  } else {
    const p = tf.pad(flat, [[0, 0], [top, 2 * (oh + 1) - top - H], [left, 2 * (ow + 1) - left - W], [0, 0]]);
    const v = tf.reshape(p, [T * B, oh + 1, 2, ow + 1, 2, C]);
    for (let kh = 0; kh < 3; kh++) {
      for (let kw = 0; kw < 3; kw++) {
        taps.push(tf.reshape(tf.slice(v, [0, kh >> 1, kh & 1, kw >> 1, kw & 1, 0], [T * B, oh, 1, ow, 1, C]), [T * B, oh, ow, C]));
      }
    }
  }
  const wk = tf.reshape(w, [T, 9, C, F]);
  const terms = taps.map((tap, k) =>
    tf.matMul(tf.reshape(tap, [T, B * oh * ow, C]), tf.reshape(tf.slice(wk, [0, k, 0, 0], [T, 1, C, F]), [T, C, F])),
  );
  return tf.reshape(tf.addN(terms), [T, B, oh, ow, F]);
}

function batchedBatchNorm(h: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor): tf.Tensor {
  const T = h.shape[0];
  const C = h.shape[4]!;
  const { mean, variance } = tf.moments(h, [1, 2, 3], true);
  const normed = tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, BN_EPSILON)));
  return tf.add(tf.mul(normed, tf.reshape(scale, [T, 1, 1, 1, C])), tf.reshape(offset, [T, 1, 1, 1, C]));
}

/** models/conv4-batched.ts: x [T, B, ...image] → logits [T, B, outputs], θ with a leading task axis. */
export function referenceConv4BatchedForward(config: Conv4Config, params: Named, x: tf.Tensor): tf.Tensor {
  const T = x.shape[0];
  const B = x.shape[1]!;
  let h = tf.reshape(x, [T, B, config.imageSize, config.imageSize, config.channels]);
  const stride = config.pool === 'stride' ? 2 : 1;
  for (let i = 0; i < 4; i++) {
    const F = param(params, `conv${i}.w`).shape[4]!;
    h = batchedConv3x3(h, param(params, `conv${i}.w`), stride);
    h = tf.add(h, tf.reshape(param(params, `conv${i}.b`), [T, 1, 1, 1, F]));
    h = batchedBatchNorm(h, param(params, `bn${i}.scale`), param(params, `bn${i}.offset`));
    h = tf.relu(h);
    if (config.pool === 'max') {
      const [, , H, W] = h.shape as number[];
      const pooled = tf.maxPool(tf.reshape<tf.Rank.R4>(h, [T * B, H!, W!, F]), 2, 2, 'valid');
      h = tf.reshape(pooled, [T, B, ...pooled.shape.slice(1)]);
    }
  }
  const flat = tf.reshape(h, [T, B, -1]);
  const head = param(params, 'head.w');
  return tf.add(tf.matMul(flat, head), tf.expandDims(param(params, 'head.b'), 1));
}

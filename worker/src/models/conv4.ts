/**
 * Conv4, the few-shot backbone of MAML, learn2learn and MAML++: 4 blocks of
 * [3×3 conv ('same'), batch norm with learned scale and offset, ReLU, 2×2 max-pool ('valid')] — or,
 * with `pool: stride`, a stride-2 conv instead of the pool — then a linear head on the flattened
 * features. Batch norm uses the statistics of the batch it is given (transductive, as in MAML: no
 * running averages, support and query sets are normalised separately).
 *
 * Functional and exactly twice differentiable: only conv2d, batch norm (../ops/batch-norm.ts: one
 * fused kernel on tensorflow, moments and elementwise ops elsewhere), relu, maxPool, matMul and
 * elementwise ops, whose gradients (with ../gradients/register.ts) are themselves differentiable.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv4FeatureSize, modelLayout, taskDims, type RunSpec } from '@metaloop/shared';
import { batchNormTraining } from '../ops/batch-norm.js';
import type { Model, NamedTensors } from './types.js';

export const BN_EPSILON = 1e-5;

export interface Conv4Config {
  readonly filters: number;
  readonly pool: 'max' | 'stride';
  readonly imageSize: number;
  readonly channels: number;
  readonly outputs: number;
}

function param(params: NamedTensors, name: string): tf.Tensor {
  const t = params[name];
  if (!t) throw new Error(`conv4: parameter ${name} missing`);
  return t;
}

/** Batch norm over N, H, W with the batch's own statistics, then scale and offset per channel (ops/batch-norm.ts). */
export function batchNorm(h: tf.Tensor4D, scale: tf.Tensor, offset: tf.Tensor): tf.Tensor4D {
  return batchNormTraining(h, scale, offset, BN_EPSILON);
}

/** Forward pass: x [N, imageSize, imageSize, channels] → logits [N, outputs]. */
export function conv4Forward(config: Conv4Config, params: NamedTensors, x: tf.Tensor): tf.Tensor2D {
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

export function conv4Config(spec: RunSpec): Conv4Config {
  if (spec.model.kind !== 'conv4') throw new Error(`createConv4 needs model.kind conv4, got ${spec.model.kind}`);
  const dims = taskDims(spec);
  if (!dims.image) throw new Error(`conv4 needs an image task family, got ${spec.task.family}`);
  const config = {
    filters: spec.model.filters,
    pool: spec.model.pool,
    imageSize: dims.image.size,
    channels: dims.image.channels,
    outputs: dims.outputs,
  };
  if (conv4FeatureSize(config.imageSize, config.pool) < 1) {
    throw new Error(`conv4 with pool ${config.pool} needs images of at least 16 pixels, got ${config.imageSize}`);
  }
  return config;
}

export function createConv4(spec: RunSpec): Model {
  const config = conv4Config(spec);
  return {
    kind: 'conv4',
    layout: modelLayout(spec),
    forward: (params, x) => conv4Forward(config, params, x),
  };
}

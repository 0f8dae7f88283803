/**
 * Conv4, task-batched: the forward pass of ./conv4.ts for T tasks at once, each with its own copy
 * of θ (parameters [T, ...shape], images [T, N, ...]), so a shard's tasks run as one computation.
 *
 * tfjs convolutions take one filter for the whole batch, so the per-task 3×3 convolution is an
 * im2col built from shifted slices of the padded input (9 taps), each times its slice of the task's
 * filter as a batched matMul [T, N·OH·OW, C] · [T, C, F], summed. Stride 2 reads
 * its taps from a [.., OH+1, 2, OW+1, 2, C] view of the input padded to an even size, so no
 * strided slice is needed. Every op (pad, slice, reshape, addN, matMul, moments, relu, maxPool
 * per image) has a gradient made of the same ops, so the model stays exactly twice differentiable
 * and never touches the Conv2DBackprop* kernels. Batch norm uses each task's own batch
 * statistics, as ./conv4.ts does.
 */
import * as tf from '@tensorflow/tfjs-core';
import { modelLayout, type RunSpec } from '@metaloop/shared';
import { BN_EPSILON, conv4Config, type Conv4Config } from './conv4.js';
import type { Model, NamedTensors } from './types.js';

/** A task-batched model and how many tasks one pass may hold (bounds memory; fixed per spec). */
export interface TaskBatchedModel extends Model {
  readonly taskBatched: true;
  readonly maxTaskBatch: number;
  /**
   * Whether the engine batches by default on the active backend (elsewhere it loops unless asked).
   * Conv4: only on a GPU, where per-kernel launch overhead dominates. On cpu, wasm and libtensorflow
   * on a CPU a Conv4 step is compute-bound, and the per-task conv kernels (XNNPACK, the GEMM of
   * ../kernels, libtensorflow's) beat nine batched products plus the im2col copies (measured 1.5–3×
   * slower per task; bench/RESULTS.md, compute section).
   */
  readonly batchByDefault: () => boolean;
}

/** True on a GPU backend: webgl, webgpu, or tfjs-node-gpu with libtensorflow on a GPU. */
export function onGpu(): boolean {
  const name = tf.getBackend();
  if (name === 'webgl' || name === 'webgpu') return true;
  return name === 'tensorflow' && (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
}

/** Largest first-layer activation (elements) of one batched pass: 8 Mi floats = 32 MiB. */
export const CONV4_BATCH_ELEMENTS = 1 << 23;

function param(params: NamedTensors, name: string): tf.Tensor {
  const t = params[name];
  if (!t) throw new Error(`conv4 (task-batched): parameter ${name} missing`);
  return t;
}

/**
 * 3×3 convolution with 'same' padding and per-task filters: x [T, B, H, W, C], w [T, 3, 3, C, F]
 * → [T, B, OH, OW, F] with OH = ⌈H/stride⌉ (tfjs' 'same': the odd padding pixel goes at the end).
 */
export function batchedConv3x3(x: tf.Tensor, w: tf.Tensor, stride: 1 | 2): tf.Tensor {
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
    // Pad to 2·(oh+1) × 2·(ow+1): row i·2 + kh of the padded input is row i + (kh >> 1), phase kh & 1.
    const p = tf.pad(flat, [[0, 0], [top, 2 * (oh + 1) - top - H], [left, 2 * (ow + 1) - left - W], [0, 0]]);
    const v = tf.reshape(p, [T * B, oh + 1, 2, ow + 1, 2, C]);
    for (let kh = 0; kh < 3; kh++) {
      for (let kw = 0; kw < 3; kw++) {
        taps.push(tf.reshape(tf.slice(v, [0, kh >> 1, kh & 1, kw >> 1, kw & 1, 0], [T * B, oh, 1, ow, 1, C]), [T * B, oh, ow, C]));
      }
    }
  }
  // Σ over taps of tap [T, M, C] · w[tap] [T, C, F]: nine batched products (no concat, whose
  // gradient, a split along the channel axis, is a slow strided copy on the JS backends).
  const wk = tf.reshape(w, [T, 9, C, F]);
  const terms = taps.map((tap, k) =>
    tf.matMul(tf.reshape(tap, [T, B * oh * ow, C]), tf.reshape(tf.slice(wk, [0, k, 0, 0], [T, 1, C, F]), [T, C, F])),
  );
  return tf.reshape(tf.addN(terms), [T, B, oh, ow, F]);
}

/** Batch norm of each task over its own [B, H, W], then that task's scale and offset [T, C]. */
export function batchedBatchNorm(h: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor): tf.Tensor {
  const T = h.shape[0];
  const C = h.shape[4]!;
  const { mean, variance } = tf.moments(h, [1, 2, 3], true);
  const normed = tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, BN_EPSILON)));
  return tf.add(tf.mul(normed, tf.reshape(scale, [T, 1, 1, 1, C])), tf.reshape(offset, [T, 1, 1, 1, C]));
}

/** Forward pass: x [T, B, ...image] → logits [T, B, outputs], θ with a leading task axis. */
export function conv4BatchedForward(config: Conv4Config, params: NamedTensors, x: tf.Tensor): tf.Tensor {
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

export function createConv4Batched(spec: RunSpec): TaskBatchedModel {
  const config = conv4Config(spec);
  const perTask = imagesPerTask(spec) * config.imageSize * config.imageSize * config.filters;
  return {
    kind: 'conv4',
    layout: modelLayout(spec),
    taskBatched: true,
    maxTaskBatch: Math.max(1, Math.floor(CONV4_BATCH_ELEMENTS / perTask)),
    batchByDefault: onGpu,
    forward: (params, x) => conv4BatchedForward(config, params, x),
  };
}

/** Support + query images of one task (the larger of the two passes bounds memory). */
function imagesPerTask(spec: RunSpec): number {
  const t = spec.task as { ways?: number; shots?: number; queries?: number };
  const ways = t.ways ?? 1;
  return ways * Math.max(t.shots ?? 1, t.queries ?? 1);
}

/** The task-batched variant of the spec's model, when there is one (models that batch natively need none). */
export function taskBatchedVariant(spec: RunSpec): TaskBatchedModel | undefined {
  return spec.model.kind === 'conv4' ? createConv4Batched(spec) : undefined;
}

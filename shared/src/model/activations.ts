/**
 * The activations a layer's `activation:` option (and the Activation layer) may name, in Keras 3's
 * spelling and meaning, each built from ops that stay differentiable twice:
 *   linear x · relu max(x, 0) · leaky_relu (slope 0.2, Keras' default) · elu (α = 1) · tanh ·
 *   sigmoid · gelu 0.5·x·(1 + erf(x/√2)) (Keras' default, approximate=False) · silu (swish) x·σ(x).
 * softmax is refused: the classification loss applies it to the model's output (logits).
 */
import { z } from 'zod';
import type { Tensor, Tf } from './types.js';

export const ACTIVATIONS = ['linear', 'relu', 'leaky_relu', 'elu', 'tanh', 'sigmoid', 'gelu', 'silu', 'swish'] as const;
export type ActivationName = (typeof ACTIVATIONS)[number];

export const ActivationSchema = z
  .union([z.string(), z.null()])
  .default('linear')
  .transform((v, ctx): ActivationName => {
    const name = v ?? 'linear';
    if ((ACTIVATIONS as readonly string[]).includes(name)) return name as ActivationName;
    ctx.addIssue({
      code: 'custom',
      message:
        name === 'softmax'
          ? 'softmax is applied by the classification loss to the logits: leave the last layer linear'
          : `unknown activation ${JSON.stringify(name)}: use one of ${ACTIVATIONS.join(', ')}`,
    });
    return z.NEVER;
  });

/** Keras' leaky_relu activation default (the LeakyReLU layer's is 0.3). */
export const LEAKY_RELU_ACTIVATION_SLOPE = 0.2;

export function applyActivation(tf: Tf, name: ActivationName, x: Tensor): Tensor {
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'leaky_relu':
      return tf.leakyRelu(x, LEAKY_RELU_ACTIVATION_SLOPE);
    case 'elu':
      return tf.elu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    case 'silu':
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
  }
}

/**
 * LeakyReLU's gradient, x > 0 ? dy : dy · α, as TensorFlow's LeakyReluGrad op: one kernel where
 * tfjs runs where(greater(x, 0), dy, mul(dy, α)) — three kernels and a scalar α made in JavaScript
 * and copied into TensorFlow on every call (ResNet-12 has three LeakyReLUs per block). The same
 * float operations (a select between dy and dy · fround(α)), so bitwise the same values.
 * x is an attribute, not an input: the gradient is piecewise constant in x (see relu-grad.ts).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../../errors.js';
import { nativeOps } from './native.js';

export const LEAKY_RELU_GRAD = 'MetaloopLeakyReluGrad';

export interface LeakyReluGradAttrs {
  /** The LeakyReLU's input (features) and negative slope. */
  readonly x: tf.TensorInfo;
  readonly alpha: number;
}

export const leakyReluGradTensorflowConfig: tf.KernelConfig = {
  kernelName: LEAKY_RELU_GRAD,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy } = inputs as { dy: tf.TensorInfo };
    const { x, alpha } = attrs as unknown as LeakyReluGradAttrs;
    if (!x || typeof alpha !== 'number') throw new KernelSetupError(`${LEAKY_RELU_GRAD}: attributes x (the LeakyReLU's input) and alpha needed`);
    if (dy.dtype !== 'float32' || x.dtype !== 'float32') throw new KernelSetupError(`${LEAKY_RELU_GRAD}: float32 only, got ${dy.dtype} and ${x.dtype}`);
    const ops = nativeOps(backend);
    return ops.run('LeakyReluGrad', [ops.attr.T, ops.attr.float('alpha', alpha)], [dy, x]);
  },
};

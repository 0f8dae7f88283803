/**
 * ReLU's gradient dy · [x > 0] as TensorFlow's ReluGrad op: one kernel where tfjs runs
 * mul(dy, cast(step(x))) and tfjs-node's Step is six ops (isNaN, greater, ones — made in JavaScript
 * and copied into TensorFlow, the size of x —, fill, two selects) plus a cast: 1.8 ms per call on a
 * Conv4 activation of 75 images.
 *
 * Bitwise the same values as the tfjs composite for every x that is not NaN (both multiply dy by
 * exactly 0 or 1). x is an attribute, not an input: the gradient is piecewise constant in x, so to
 * a tape x is a constant and no zero gradient is formed and added for it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../../errors.js';
import { nativeOps } from './native.js';

export const RELU_GRAD = 'MetaloopReluGrad';

export interface ReluGradAttrs {
  /** The ReLU's input (features). */
  readonly x: tf.TensorInfo;
}

export const reluGradTensorflowConfig: tf.KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy } = inputs as { dy: tf.TensorInfo };
    const { x } = attrs as unknown as ReluGradAttrs;
    if (!x) throw new KernelSetupError(`${RELU_GRAD}: attribute x (the ReLU's input) missing`);
    if (dy.dtype !== 'float32' || x.dtype !== 'float32') throw new KernelSetupError(`${RELU_GRAD}: float32 only, got ${dy.dtype} and ${x.dtype}`);
    const ops = nativeOps(backend);
    return ops.run('ReluGrad', [ops.attr.T], [dy, x]);
  },
};

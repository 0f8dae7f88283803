/**
 * The inner loop's SGD update of every parameter at once, θ'_i = θ_i − lr·g_i, as one kernel (and
 * its gradient, −lr·dy_i for every i, as another). tfjs runs a Multiply and a Sub per parameter,
 * each a tape node that saves clones of both operands: 108 kernels for Conv4's 18 tensors, and as
 * many again for their gradients. The TensorFlow ops inside are the same Mul(lr, g) and Sub (and
 * Neg then Mul for the gradient), so the values are bitwise tfjs'. lr is an attribute (the run's
 * inner learning rate, a constant); a learned rate uses the tfjs ops (ops/sgd-step.ts).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { KernelSetupError } from '../../errors.js';
import { nativeOps } from './native.js';

export const SGD_STEP = 'MetaloopSgdStep';
export const SGD_STEP_GRAD = 'MetaloopSgdStepGrad';

export interface SgdStepAttrs {
  readonly lr: number;
  /** Number of parameters n; inputs p0…p(n−1), g0…g(n−1) (the gradient kernel: dy0…dy(n−1)). */
  readonly n: number;
}

function tensorsOf(kernel: string, inputs: tf.NamedTensorInfoMap, prefix: string, n: number): tf.TensorInfo[] {
  return Array.from({ length: n }, (_, i) => {
    const t = inputs[`${prefix}${i}`];
    if (!t) throw new KernelSetupError(`${kernel}: input ${prefix}${i} missing (n = ${n})`);
    if (t.dtype !== 'float32') throw new KernelSetupError(`${kernel}: float32 only, got ${t.dtype} for ${prefix}${i}`);
    return t;
  });
}

export const sgdStepTensorflowConfig: tf.KernelConfig = {
  kernelName: SGD_STEP,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { lr, n } = attrs as unknown as SgdStepAttrs;
    const ps = tensorsOf(SGD_STEP, inputs, 'p', n);
    const gs = tensorsOf(SGD_STEP, inputs, 'g', n);
    const ops = nativeOps(backend);
    const rate = ops.constFloat(lr);
    return ps.map((p, i) => {
      const [step] = ops.raw('Mul', [ops.attr.T], [rate, gs[i]!]);
      const out = ops.run('Sub', [ops.attr.T], [p, step!]);
      ops.release(step!);
      return out;
    });
  },
};

export const sgdStepGradTensorflowConfig: tf.KernelConfig = {
  kernelName: SGD_STEP_GRAD,
  backendName: 'tensorflow',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { lr, n } = attrs as unknown as SgdStepAttrs;
    const dys = tensorsOf(SGD_STEP_GRAD, inputs, 'dy', n);
    const ops = nativeOps(backend);
    const rate = ops.constFloat(lr);
    return dys.map((dy) => {
      const [neg] = ops.raw('Neg', [ops.attr.T], [dy]);
      const out = ops.run('Mul', [ops.attr.T], [neg!, rate]);
      ops.release(neg!);
      return out;
    });
  },
};

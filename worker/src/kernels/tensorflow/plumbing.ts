/**
 * tfjs-node's Reshape, Sum, Mean, Max and Cast without their per-call waste, bitwise the same
 * results (the same TensorFlow op on the same operands):
 *   - Reshape, Sum, Mean, Max make their shape or axes operand as a new tfjs tensor on every call
 *     (a tensor1d: engine bookkeeping and a copy into TensorFlow, ~25 µs): here a kept constant;
 *   - Mean casts its input to float32 first, a full copy even when it is float32 already;
 *   - Cast to the dtype a tensor already has runs TensorFlow's Cast, another full copy: here it
 *     shares the data, as tfjs' Identity does (a Conv4 MAML task made ~320 such casts, from
 *     tfjs' gradients of Mul, RealDiv, Relu and Square).
 * Other dtypes than those handled go to tfjs-node's own kernel.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { util } from '@tensorflow/tfjs-core';
import { runReplaced } from '../replaced-kernels.js';
import { nativeOps } from './native.js';

type Args = Parameters<tf.KernelFunc>[0];
const NUMERIC = new Set<string>(['float32', 'int32']);

function reduction(kernelName: 'Sum' | 'Mean' | 'Max', axisAttr: 'axis' | 'reductionIndices'): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'tensorflow',
    kernelFunc: (args: Args) => {
      const x = args.inputs['x'] as tf.TensorInfo;
      if (!NUMERIC.has(x.dtype) || (kernelName === 'Mean' && x.dtype !== 'float32')) return runReplaced(kernelName, 'tensorflow', args);
      const a = args.attrs as Record<string, unknown>;
      const axes = util.parseAxisParam(a[axisAttr] as number | number[], x.shape);
      const ops = nativeOps(args.backend);
      const dtype = x.dtype as 'float32' | 'int32';
      return ops.run(kernelName, [ops.attr.bool('keep_dims', a['keepDims'] === true), ops.attr.type('T', dtype), ops.attr.type('Tidx', 'int32')], [x, ops.constInt32(axes)]);
    },
  };
}

export const sumTensorflowConfig = reduction('Sum', 'axis');
export const meanTensorflowConfig = reduction('Mean', 'axis');
export const maxTensorflowConfig = reduction('Max', 'reductionIndices');

export const reshapeTensorflowConfig: tf.KernelConfig = {
  kernelName: 'Reshape',
  backendName: 'tensorflow',
  kernelFunc: (args: Args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    if (!NUMERIC.has(x.dtype) && x.dtype !== 'bool') return runReplaced('Reshape', 'tensorflow', args);
    const shape = util.inferFromImplicitShape((args.attrs as { shape: number[] }).shape, util.sizeFromShape(x.shape));
    const ops = nativeOps(args.backend);
    return ops.run('Reshape', [ops.attr.type('T', x.dtype as 'float32' | 'int32' | 'bool'), ops.attr.type('Tshape', 'int32')], [x, ops.constInt32(shape)]);
  },
};

export const castTensorflowConfig: tf.KernelConfig = {
  kernelName: 'Cast',
  backendName: 'tensorflow',
  kernelFunc: (args: Args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    if ((args.attrs as { dtype: string }).dtype !== x.dtype) return runReplaced('Cast', 'tensorflow', args);
    nativeOps(args.backend).backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  },
};

/**
 * BroadcastTo, which tfjs-node does not register (tfjs' broadcastTo op runs Tile, whose gradient
 * sums one slice at a time); used by the Sum and Mean gradients (../../gradients/arithmetic.ts)
 * where upstream multiplies by ones made in JavaScript.
 */
export const broadcastToTensorflowConfig: tf.KernelConfig = {
  kernelName: 'BroadcastTo',
  backendName: 'tensorflow',
  kernelFunc: (args: Args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    const ops = nativeOps(args.backend);
    const shape = (args.attrs as { shape: number[] }).shape;
    return ops.run('BroadcastTo', [ops.attr.type('T', x.dtype as 'float32' | 'int32' | 'bool'), ops.attr.type('Tidx', 'int32')], [x, ops.constInt32(shape)]);
  },
};

/**
 * Gradient of the fused training batch norm (../kernels/tensorflow/batch-norm.ts): one
 * MetaloopBatchNormGrad kernel gives dx, dscale and doffset together. It is run once, when the
 * node's gradient is asked for (inside the backward pass's scope, so all three outputs live until
 * the engine has taken each), and each input's closure returns its part.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { BATCH_NORM, BATCH_NORM_GRAD, type BatchNormAttrs } from '../kernels/tensorflow/batch-norm.js';
import { runNativeMulti } from './native-kernels.js';
import { savedAt } from './util.js';

export const batchNormGradConfig: tf.GradConfig = {
  kernelName: BATCH_NORM,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys)!;
    const x = savedAt(saved, 0, BATCH_NORM);
    const scale = savedAt(saved, 1, BATCH_NORM);
    const mean = savedAt(saved, 2, BATCH_NORM);
    const variance = savedAt(saved, 3, BATCH_NORM);
    const { epsilon } = attrs as unknown as BatchNormAttrs;
    const [dx, dscale, doffset] = runNativeMulti(BATCH_NORM_GRAD, { dy, x, scale }, { epsilon, mean, variance }) as [tf.Tensor, tf.Tensor, tf.Tensor];
    return { x: () => dx, scale: () => dscale, offset: () => doffset };
  },
};

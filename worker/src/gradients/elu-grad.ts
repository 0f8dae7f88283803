/**
 * Gradient of EluGrad (dx = dy · (y ≥ 0 ? 1 : y + 1), with y = elu(x)), which TF.js 4.22 does not
 * register. ∂/∂dy = EluGrad(ddx, y); ∂/∂y = ddx · dy · [y < 0].
 */
import * as tf from '@tensorflow/tfjs-core';
import { runKernel, savedAt, single } from './util.js';

export const eluGradGradConfig: tf.GradConfig = {
  kernelName: tf.EluGrad,
  inputsToSave: ['dy', 'y'],
  gradFunc: (ddxIn, saved) => {
    const ddx = single(ddxIn);
    const dy = savedAt(saved, 0, tf.EluGrad);
    const y = savedAt(saved, 1, tf.EluGrad);
    return {
      dy: () => runKernel(tf.EluGrad, { dy: ddx, y }),
      y: () => tf.mul(tf.mul(ddx, dy), tf.cast(tf.less(y, 0), 'float32')),
    };
  },
};

/** Fully connected network: x[N, in] → hidden layers (relu | tanh) → out[N, outputs], no final activation. */
import * as tf from '@tensorflow/tfjs-core';
import { paramLayout, type RunSpec } from '@metaloop/shared';
import type { Model, NamedTensors } from './types.js';

export interface MlpConfig {
  readonly hidden: readonly number[];
  readonly activation: 'relu' | 'tanh';
}

export function createMlp(spec: RunSpec): Model {
  if (spec.model.kind !== 'mlp') throw new Error(`createMlp needs model.kind mlp, got ${spec.model.kind}`);
  const layout = paramLayout(spec);
  const layers = layout.length / 2;
  const act = spec.model.activation === 'tanh' ? tf.tanh : tf.relu;
  const names = Array.from({ length: layers }, (_, i) => [`l${i}.w`, `l${i}.b`] as const);
  return {
    kind: 'mlp',
    layout,
    forward(params: NamedTensors, x: tf.Tensor): tf.Tensor {
      let h = x;
      for (let i = 0; i < layers; i++) {
        const [wn, bn] = names[i]!;
        const w = params[wn];
        const b = params[bn];
        if (!w || !b) throw new Error(`mlp: parameter ${w ? bn : wn} missing`);
        h = tf.add(tf.matMul(h as tf.Tensor2D, w as tf.Tensor2D), b);
        if (i + 1 < layers) h = act(h);
      }
      return h;
    },
  };
}

/**
 * Fully connected network: x[N, in] → hidden layers (relu | tanh) → out[N, outputs], no final
 * activation. Task-batched: with weights [T, in, out], biases [T, out] and x [T, N, in] every
 * task runs through its own copy of the parameters in one batched matMul per layer.
 * Inputs of any shape are flattened per example first (images [N, h, w, c] → [N, h·w·c], in
 * row-major order), so the MLP runs on image families too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { modelLayout, type RunSpec } from '@metaloop/shared';
import type { Model, NamedTensors } from './types.js';

export function createMlp(spec: RunSpec): Model {
  if (spec.model.kind !== 'mlp') throw new Error(`createMlp needs model.kind mlp, got ${spec.model.kind}`);
  const layout = modelLayout(spec);
  const layers = layout.length / 2;
  const act = spec.model.activation === 'tanh' ? tf.tanh : tf.relu;
  const names = Array.from({ length: layers }, (_, i) => [`l${i}.w`, `l${i}.b`] as const);
  return {
    kind: 'mlp',
    layout,
    taskBatched: true,
    forward(params: NamedTensors, x: tf.Tensor): tf.Tensor {
      const batched = params[names[0]![0]]?.rank === 3;
      const lead = batched ? 2 : 1;
      let h = x.rank === lead + 1 ? x : tf.reshape(x, [...x.shape.slice(0, lead), -1]);
      for (let i = 0; i < layers; i++) {
        const [wn, bn] = names[i]!;
        const w = params[wn];
        const b = params[bn];
        if (!w || !b) throw new Error(`mlp: parameter ${w ? bn : wn} missing`);
        // Batched: b [T, out] broadcasts over the N rows of each task as [T, 1, out].
        h = tf.add(tf.matMul(h, w), w.rank === 3 ? tf.expandDims(b, 1) : b);
        if (i + 1 < layers) h = act(h);
      }
      return h;
    },
  };
}

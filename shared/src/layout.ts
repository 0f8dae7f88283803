/**
 * Parameter layouts and deterministic initialisation, in plain JS so the coordinator needs no tfjs.
 * The worker's functional models read parameters by these names and shapes, in this order.
 */
import { layoutSize, type FlatTensors, type TensorSpec } from './codec.js';
import { Rng, taskSeed } from './seeds.js';
import type { RunSpec } from './spec.js';

/** Input and output sizes a task family gives a model. */
export function taskDims(spec: RunSpec): { inputs: number; outputs: number } {
  switch (spec.task.family) {
    case 'sinusoid':
      return { inputs: 1, outputs: 1 };
  }
}

/** Shape of every meta-learned tensor, in wire order. */
export function paramLayout(spec: RunSpec): TensorSpec[] {
  const { inputs, outputs } = taskDims(spec);
  switch (spec.model.kind) {
    case 'mlp': {
      const sizes = [inputs, ...spec.model.hidden, outputs];
      const layout: TensorSpec[] = [];
      for (let i = 0; i + 1 < sizes.length; i++) {
        layout.push({ name: `l${i}.w`, shape: [sizes[i]!, sizes[i + 1]!] });
        layout.push({ name: `l${i}.b`, shape: [sizes[i + 1]!] });
      }
      return layout;
    }
  }
}

/**
 * θ_0: weights uniform in ±sqrt(6 / (fanIn + fanOut)) (Glorot), biases zero; seeded by the run seed.
 */
export function initParams(spec: RunSpec): FlatTensors {
  const layout = paramLayout(spec);
  const data = new Float32Array(layoutSize(layout));
  const rng = new Rng(taskSeed(spec.seed, 'init', 0, 0));
  let off = 0;
  for (const t of layout) {
    const n = layoutSize([t]);
    if (t.shape.length >= 2) {
      const fanIn = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const fanOut = t.shape[t.shape.length - 1]!;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) data[off + i] = rng.uniform(-limit, limit);
    }
    off += n;
  }
  return { layout, data };
}

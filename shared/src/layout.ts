/**
 * Parameter layouts and deterministic initialisation, in plain JS so the coordinator needs no tfjs.
 * The worker's functional models read parameters by these names and shapes, in this order.
 */
import { layoutSize, type FlatTensors, type TensorSpec } from './codec.js';
import { LOG_STD, rlDims } from './rl-spec.js';
import { Rng, taskSeed } from './seeds.js';
import type { RunSpec } from './spec.js';

/** Input and output sizes a task family gives a model; image families also give the image shape. */
export interface TaskDims {
  inputs: number;
  outputs: number;
  image?: { size: number; channels: number };
}

export function taskDims(spec: RunSpec): TaskDims {
  const task = spec.task;
  switch (task.family) {
    case 'sinusoid':
      return { inputs: 1, outputs: 1 };
    case 'synthetic-glyphs':
      return { inputs: task.imageSize * task.imageSize, outputs: task.ways, image: { size: task.imageSize, channels: 1 } };
    case 'fewshot-images':
      return {
        inputs: task.imageSize * task.imageSize * task.channels,
        outputs: task.ways,
        image: { size: task.imageSize, channels: task.channels },
      };
    case 'navigation-2d':
    case 'pendulum': {
      // Meta-RL: the policy maps an observation to an action (rl-spec.ts).
      const { obs, act } = rlDims(task);
      return { inputs: obs, outputs: act };
    }
  }
}

/**
 * Side of Conv4's last feature map: each block halves it, by a 2×2 'valid' max-pool (floor) or a
 * stride-2 'same' conv (ceil).
 */
export function conv4FeatureSize(imageSize: number, pool: 'max' | 'stride'): number {
  let s = imageSize;
  for (let i = 0; i < 4; i++) s = pool === 'max' ? Math.floor(s / 2) : Math.ceil(s / 2);
  return s;
}

/** Shape of every tensor the model itself reads (no algorithm extras), in wire order. */
export function modelLayout(spec: RunSpec): TensorSpec[] {
  const dims = taskDims(spec);
  const { inputs, outputs } = dims;
  const layout: TensorSpec[] = [];
  switch (spec.model.kind) {
    case 'mlp': {
      const sizes = [inputs, ...spec.model.hidden, outputs];
      for (let i = 0; i + 1 < sizes.length; i++) {
        layout.push({ name: `l${i}.w`, shape: [sizes[i]!, sizes[i + 1]!] });
        layout.push({ name: `l${i}.b`, shape: [sizes[i + 1]!] });
      }
      return layout;
    }
    case 'conv4': {
      if (!dims.image) throw new Error(`conv4 needs an image task family, got ${spec.task.family}`);
      const f = spec.model.filters;
      const side = conv4FeatureSize(dims.image.size, spec.model.pool);
      if (side < 1) throw new Error(`conv4 with pool ${spec.model.pool} needs images of at least 16 pixels, got ${dims.image.size}`);
      let cin = dims.image.channels;
      for (let i = 0; i < 4; i++) {
        layout.push({ name: `conv${i}.w`, shape: [3, 3, cin, f] });
        layout.push({ name: `conv${i}.b`, shape: [f] });
        layout.push({ name: `bn${i}.scale`, shape: [f] });
        layout.push({ name: `bn${i}.offset`, shape: [f] });
        cin = f;
      }
      layout.push({ name: 'head.w', shape: [side * side * f, outputs] });
      layout.push({ name: 'head.b', shape: [outputs] });
      return layout;
    }
    case 'gaussian-mlp': {
      // The mean network laid out as the mlp model's, then the state-independent log std (rl-spec.ts).
      const mean = modelLayout({ ...spec, model: { kind: 'mlp', hidden: spec.model.hidden, activation: spec.model.activation } });
      return [...mean, { name: LOG_STD, shape: [outputs] }];
    }
  }
}

/** Names of the model's output layer (ANIL adapts only these). */
export function headParamNames(spec: RunSpec): string[] {
  const names = modelLayout(spec).map((t) => t.name);
  return names.slice(-2);
}

/** Names of the tensors the inner loop adapts: the head for anil, every model tensor otherwise. */
export function adaptedParamNames(spec: RunSpec): string[] {
  return spec.algorithm.kind === 'anil' ? headParamNames(spec) : modelLayout(spec).map((t) => t.name);
}

/**
 * Shape of every meta-learned tensor, in wire order: the model's, then the algorithm's extras —
 * `lr.<name>` (Meta-SGD: a learned inner rate per parameter, same shape) or `lslr.<name>` (MAML++:
 * a learned inner rate per adapted tensor and inner step, shape [innerSteps]).
 */
export function paramLayout(spec: RunSpec): TensorSpec[] {
  const model = modelLayout(spec);
  const a = spec.algorithm;
  if (a.kind === 'metasgd') return [...model, ...model.map((t) => ({ name: `lr.${t.name}`, shape: [...t.shape] }))];
  if (a.learnedLayerLr) {
    return [...model, ...adaptedParamNames(spec).map((name) => ({ name: `lslr.${name}`, shape: [a.innerSteps] }))];
  }
  return model;
}

/**
 * θ_0, seeded by the run seed: weights uniform in ±sqrt(6 / (fanIn + fanOut)) (Glorot; for a conv
 * kernel [kh, kw, in, out] the fans are kh·kw·in and kh·kw·out), biases and batch-norm offsets zero,
 * batch-norm scales one, learned inner rates (`lr.*`, `lslr.*`) the spec's innerLr, a Gaussian
 * policy's `log_std` log(model.initStd).
 */
export function initParams(spec: RunSpec): FlatTensors {
  const layout = paramLayout(spec);
  const data = new Float32Array(layoutSize(layout));
  const rng = new Rng(taskSeed(spec.seed, 'init', 0, 0));
  let off = 0;
  for (const t of layout) {
    const n = layoutSize([t]);
    if (t.name.startsWith('lr.') || t.name.startsWith('lslr.')) {
      data.fill(spec.algorithm.innerLr, off, off + n);
    } else if (t.name === LOG_STD && spec.model.kind === 'gaussian-mlp') {
      data.fill(Math.log(spec.model.initStd), off, off + n);
    } else if (t.name.endsWith('.scale')) {
      data.fill(1, off, off + n);
    } else if (t.shape.length >= 2) {
      const receptive = t.shape.length === 4 ? t.shape[0]! * t.shape[1]! : 1;
      const fanIn = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const fanOut = t.shape[t.shape.length - 1]! * receptive;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) data[off + i] = rng.uniform(-limit, limit);
    }
    off += n;
  }
  return { layout, data };
}

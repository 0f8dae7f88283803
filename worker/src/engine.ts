/**
 * computeShard: rebuild a shard's tasks from their seeds, run the algorithm on each, and return
 * the summed meta-gradient and losses (train) or the held-out loss curve (eval).
 *
 * Reproducibility: tasks run one at a time in task order, each in its own tf.tidy, and their
 * results are summed on the host in float64 in task order, then rounded once to float32. The
 * same spec, θ and seeds give bitwise-identical results on the same backend.
 */
import './upstream.js';
import * as tf from '@tensorflow/tfjs-core';
import { layoutSize, sizeOf, type RunSpec, type TensorSpec } from '@metaloop/shared';
import { createAlgorithm } from './algorithms/index.js';
import { lossOf } from './algorithms/loss.js';
import type { Algorithm, InnerLoop, TaskTensors } from './algorithms/types.js';
import { ShardAbortedError } from './errors.js';
import { createModel } from './models/index.js';
import { createTaskFamily } from './tasks/index.js';
import type { Examples, TaskData, TaskFamily } from './tasks/types.js';

export interface ShardWork {
  readonly kind: 'train' | 'eval';
  readonly taskSeeds: readonly number[];
  /** Eval shards: number of inner steps K; losses are reported after k = 0..K. */
  readonly evalInnerSteps?: number;
}

export interface TrainShardResult {
  readonly kind: 'train';
  /** Meta-gradient summed (not averaged) over the shard's tasks, in layout order. */
  readonly grad: Float32Array;
  readonly preLossSum: number;
  readonly postLossSum: number;
  readonly tasks: number;
}

export interface EvalShardResult {
  readonly kind: 'eval';
  /** Query loss after k = 0..evalInnerSteps inner steps, summed over tasks. */
  readonly evalLossSums: number[];
  /** Classification families only: query accuracy after k steps, summed over tasks. */
  readonly evalAccuracySums?: number[];
  readonly tasks: number;
}

export type ShardComputation = TrainShardResult | EvalShardResult;

export interface ComputeShardOptions {
  /** Checked between tasks: an aborted signal stops the shard with ShardAbortedError. */
  readonly signal?: AbortSignal;
  /** Called after each task (e.g. to extend a work item's lease). */
  readonly onTask?: (done: number, total: number) => void;
  /** Let the event loop run (timers, I/O) after this much uninterrupted compute; default 25 ms. */
  readonly yieldEveryMs?: number;
}

/** Everything a spec determines, built once per spec object. */
export interface CompiledRun {
  readonly spec: RunSpec;
  readonly layout: readonly TensorSpec[];
  readonly size: number;
  readonly family: TaskFamily;
  readonly algorithm: Algorithm;
  readonly inner: InnerLoop;
}

const compiled = new WeakMap<RunSpec, CompiledRun>();

export function compileRun(spec: RunSpec): CompiledRun {
  let c = compiled.get(spec);
  if (c) return c;
  const model = createModel(spec);
  const family = createTaskFamily(spec);
  const algorithm = createAlgorithm(spec);
  const inner: InnerLoop = {
    model,
    loss: lossOf(family.loss),
    innerSteps: spec.algorithm.innerSteps,
    innerLr: spec.algorithm.innerLr,
  };
  c = { spec, layout: model.layout, size: layoutSize(model.layout), family, algorithm, inner };
  compiled.set(spec, c);
  return c;
}

function examples(family: TaskFamily, e: Examples): [tf.Tensor, tf.Tensor] {
  return [tf.tensor(e.x, [e.n, ...family.inputShape]), tf.tensor(e.y, [e.n, family.outputs])];
}

/** A task's tensors (call inside tf.tidy). */
export function taskTensors(family: TaskFamily, task: TaskData): TaskTensors {
  const [xs, ys] = examples(family, task.support);
  const [xq, yq] = examples(family, task.query);
  return { xs, ys, xq, yq };
}

/** θ as tensors in layout order (copies `params`, so the caller may reuse its array). */
export function paramTensors(run: CompiledRun, params: Float32Array): tf.Tensor[] {
  if (params.length !== run.size) {
    throw new RangeError(`θ has ${params.length} values, the ${run.spec.model.kind} layout needs ${run.size}`);
  }
  let off = 0;
  return run.layout.map((t) => {
    const n = sizeOf(t.shape);
    const x = tf.tensor(params.slice(off, off + n), [...t.shape]);
    off += n;
    return x;
  });
}

/** One task's meta-gradient, pre- and post-adaptation query loss as [grad..., pre, post]. */
export function trainTask(run: CompiledRun, theta: readonly tf.Tensor[], seed: number): Float32Array {
  const out = tf.tidy(() => {
    const task = taskTensors(run.family, run.family.sample(seed));
    const r = run.algorithm.metaGradient(run.inner, theta, task);
    return tf.concat([...r.grads.map((g) => tf.reshape(g, [-1])), tf.reshape(r.preLoss, [1]), tf.reshape(r.postLoss, [1])]);
  });
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/** One task's query losses after 0..steps inner steps, then accuracies when the loss has them. */
export function evalTask(run: CompiledRun, theta: readonly tf.Tensor[], seed: number, steps: number): Float32Array {
  const out = tf.tidy(() => {
    const task = taskTensors(run.family, run.family.sample(seed));
    const r = run.algorithm.evaluate(run.inner, theta, task, steps);
    return tf.stack([...r.losses, ...(r.accuracies ?? [])]);
  });
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function computeShard(
  spec: RunSpec,
  params: Float32Array,
  shard: ShardWork,
  options: ComputeShardOptions = {},
): Promise<ShardComputation> {
  const run = compileRun(spec);
  const seeds = shard.taskSeeds;
  const yieldEveryMs = options.yieldEveryMs ?? 25;
  const steps = shard.evalInnerSteps ?? spec.eval.innerSteps;
  if (shard.kind === 'eval' && !(Number.isInteger(steps) && steps >= 0)) {
    throw new RangeError(`evalInnerSteps must be a whole number >= 0, got ${steps}`);
  }
  const theta = paramTensors(run, params);
  try {
    const width = shard.kind === 'train' ? run.size + 2 : (steps + 1) * (run.inner.loss.accuracy ? 2 : 1);
    const acc = new Float64Array(width);
    let lastYield = performance.now();
    for (let i = 0; i < seeds.length; i++) {
      if (options.signal?.aborted) throw new ShardAbortedError(i);
      const r = shard.kind === 'train' ? trainTask(run, theta, seeds[i]!) : evalTask(run, theta, seeds[i]!, steps);
      for (let j = 0; j < width; j++) acc[j]! += r[j]!;
      options.onTask?.(i + 1, seeds.length);
      if (i + 1 < seeds.length && performance.now() - lastYield >= yieldEveryMs) {
        await yieldToLoop();
        lastYield = performance.now();
      }
    }
    if (shard.kind === 'train') {
      return {
        kind: 'train',
        grad: Float32Array.from(acc.subarray(0, run.size)),
        preLossSum: acc[run.size]!,
        postLossSum: acc[run.size + 1]!,
        tasks: seeds.length,
      };
    }
    const losses = Array.from(acc.subarray(0, steps + 1));
    return run.inner.loss.accuracy
      ? { kind: 'eval', evalLossSums: losses, evalAccuracySums: Array.from(acc.subarray(steps + 1)), tasks: seeds.length }
      : { kind: 'eval', evalLossSums: losses, tasks: seeds.length };
  } finally {
    tf.dispose(theta);
  }
}
